# mvead unit: the command and the pipeline stages
mvead_mvead_SOURCES += mvead/main.c
libmvead_la_SOURCES += mvead/options.c mvead/options.h mvead/progress.c mvead/progress.h \
	mvead/pipeline.h mvead/commands.h mvead/train.c mvead/bank_stage.c mvead/eval_stage.c mvead/extract_stage.c \
	mvead/attention_cmd.c mvead/scoremaps.c mvead/scratch.c mvead/scratch.h
nobase_pkginclude_HEADERS += mvead/options.h mvead/progress.h mvead/pipeline.h mvead/commands.h mvead/scratch.h
