/* commands: the commands of `mvead`, one table. Each row is the name, the
 * handler, whether it spreads over MPI ranks (false: under mpirun it runs on
 * rank 0 only) and the line `mvead --help` shows. The table drives dispatch,
 * the help and the MPI list (main.c). A new command is a row here and its
 * handler, which takes the arguments after the command name and returns an
 * exit code (mvead/cli/exit_codes.h). */
#ifndef MVEAD_CLI_COMMANDS_H
#define MVEAD_CLI_COMMANDS_H

#define MVEAD_COMMANDS(X) \
    X("demo",           mvead_cmd_demo,           true,  "synthesise data, extract, train, bank, eval, report (the quick tour)") \
    X("synth",          mvead_cmd_synth,          false, "render the synthetic multi-view dataset (Real-IAD layout + calibration)") \
    X("import-weights", mvead_cmd_import_weights, false, "convert DINOv2 safetensors (HF or torch-hub names) to HDF5") \
    X("calibrate",      mvead_cmd_calibrate,      false, "estimate F for every camera pair (correspondences or features + RANSAC)") \
    X("epilines",       mvead_cmd_epilines,       false, "draw epipolar lines and mask patches to check a calibration") \
    X("extract",        mvead_cmd_extract,        true,  "backbone features into the HDF5 feature cache (resumable)") \
    X("train",          mvead_cmd_train,          true,  "pre-train the EAM (MCP + Reg) on cached features (resumable)") \
    X("bank",           mvead_cmd_bank,           true,  "build the multi-view memory banks (greedy coreset)") \
    X("eval",           mvead_cmd_eval,           true,  "score the test split, anomaly maps, metrics.json") \
    X("run",            mvead_cmd_run,            true,  "extract + train + bank + eval + report for one configuration") \
    X("predict",        mvead_cmd_predict,        false, "score one sample's views: scores and heatmaps") \
    X("ablate",         mvead_cmd_ablate,         true,  "the paper's ablation grid from one config, skipping finished runs") \
    X("report",         mvead_cmd_report,         false, "HTML + Markdown report of a run; --compare runs side by side") \
    X("attention",      mvead_cmd_attention,      false, "picture of the EAM attention of one patch over the support views") \
    X("grads",          mvead_cmd_grads,          false, "every gradient of one batch of the objective, optional gradcheck")

#define MVEAD_COMMAND_DECL(name, fn, mpi, help) int fn(int argc, char **argv);
MVEAD_COMMANDS(MVEAD_COMMAND_DECL)
#undef MVEAD_COMMAND_DECL

/* synth's progress callback, shared by demo. */
void mvead_cli_synth_progress(void *ctx, int done, int total);

#endif
