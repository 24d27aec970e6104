/* Tests of the project's own files: h5io (atomic writes, checksums, kinds,
 * versions), the feature cache (round trip, float16, resume, corruption), the
 * option table (command line, JSON config, bad values) and the scratch
 * buffers that hold fused features past --memory_mb. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/cache.h"
#include "data/h5io.h"
#include "mvead/cli/options.h"
#include "mvead/run/scratch.h"
#include <dirent.h>
#include "tensor/error.h"
#include "tensor/tensor.h"

static char tmpdir[256];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mvead_store_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {}
}

static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

START_TEST(test_h5io_roundtrip_and_checks) {
    char path[300];
    snprintf(path, sizeof path, "%s/a.h5", tmpdir);
    mvd_h5_writer w;
    ck_assert_int_eq(mvd_h5_create(&w, path, "bank", 1), 0);
    ck_assert_int_ne(access(w.tmp, F_OK), -1);
    ck_assert_int_eq(access(path, F_OK), -1);   /* nothing under the final name before commit */
    int64_t shape[2] = {3, 4};
    mvt_tensor *t = mvt_empty(MVT_F32, 2, shape);
    for (int i = 0; i < 12; i++) mvt_f32(t)[i] = (float)i * 0.5f - 2.0f;
    ck_assert_int_eq(mvd_h5_write_tensor(w.file, "g/x", t), 0);
    ck_assert_int_eq(mvd_h5_attr_set_str(w.file, ".", "note", "hello"), 0);
    ck_assert_int_eq(mvd_h5_commit(&w), 0);
    ck_assert_int_eq(access(w.tmp, F_OK), -1);

    hid_t f = mvd_h5_open_read(path, "bank", 1, NULL);
    ck_assert_int_ge(f, 0);
    mvt_tensor *r = mvd_h5_read_tensor(f, "g/x", MVT_F64, 2, shape, path);
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 12; i++) ck_assert_double_eq(mvt_f64(r)[i], (double)mvt_f32(t)[i]);
    char buf[32];
    ck_assert_int_eq(mvd_h5_attr_get_str(f, ".", "note", buf, sizeof buf, path), 0);
    ck_assert_str_eq(buf, "hello");
    /* wrong rank and shape are errors naming the dataset */
    ck_assert_ptr_null(mvd_h5_read_tensor(f, "g/x", MVT_F32, 3, NULL, path));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "g/x"));
    int64_t bad[2] = {3, 5};
    ck_assert_ptr_null(mvd_h5_read_tensor(f, "g/x", MVT_F32, 2, bad, path));
    ck_assert_ptr_null(mvd_h5_read_tensor(f, "g/missing", MVT_F32, -1, NULL, path));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "missing"));
    mvd_h5_close(f);
    mvt_release(r);

    /* kind and version are checked */
    ck_assert_int_lt(mvd_h5_open_read(path, "checkpoint", 1, NULL), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "expected 'checkpoint'"));

    /* a truncated file is an error, never a crash */
    char trunc[320];
    snprintf(trunc, sizeof trunc, "%s/t.h5", tmpdir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "head -c %ld %s > %s", file_size(path) / 2, path, trunc);
    ck_assert_int_eq(system(cmd), 0);
    hid_t tf = mvd_h5_open_read(trunc, "bank", 1, NULL);
    if (tf >= 0) {
        mvt_tensor *x = mvd_h5_read_tensor(tf, "g/x", MVT_F32, -1, NULL, trunc);
        ck_assert_ptr_null(x);
        mvd_h5_close(tf);
    }
    ck_assert_ptr_nonnull(strstr(mv_error_last(), trunc));
    /* not HDF5 at all */
    char junk[320];
    snprintf(junk, sizeof junk, "%s/junk.h5", tmpdir);
    FILE *jf = fopen(junk, "w");
    fputs("not hdf5", jf);
    fclose(jf);
    ck_assert_int_lt(mvd_h5_open_read(junk, NULL, 1, NULL), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "not an HDF5 file"));
    mvt_release(t);
}
END_TEST

START_TEST(test_h5io_checksum_detects_flip) {
    char path[300];
    snprintf(path, sizeof path, "%s/c.h5", tmpdir);
    mvd_h5_writer w;
    ck_assert_int_eq(mvd_h5_create(&w, path, "checkpoint", 1), 0);
    int64_t shape[1] = {4096};
    double *d = malloc(sizeof(double) * 4096);
    for (int i = 0; i < 4096; i++) d[i] = 1.0 + i;   /* finite even after a flip of most bytes */
    ck_assert_int_eq(mvd_h5_write_f64(w.file, "x", 1, shape, d), 0);
    ck_assert_int_eq(mvd_h5_commit(&w), 0);
    /* find the data: the contiguous block of 1.0, 2.0, ... in the file */
    FILE *f = fopen(path, "rb");
    long n = file_size(path);
    ck_assert_int_gt(n, 0);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)n, f), n);
    fclose(f);
    long off = -1;
    for (long i = 0; i + 16 <= n; i++)
        if (!memcmp(buf + i, &d[100], 8) && !memcmp(buf + i + 8, &d[101], 8)) { off = i; break; }
    ck_assert_int_ge(off, 0);
    flip_byte(path, off + 2);   /* a low mantissa byte: still a finite number */
    hid_t h = mvd_h5_open_read(path, "checkpoint", 1, NULL);
    ck_assert_int_ge(h, 0);
    ck_assert_ptr_null(mvd_h5_read_tensor(h, "x", MVT_F64, 1, NULL, path));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "checksum mismatch"));
    mvd_h5_close(h);
    free(buf);
    free(d);
}
END_TEST

static void make_meta(int64_t S, int V, const char **cat, const char **sid, const char **acl, const char **ip,
                      const char **mp, int64_t *vl, int64_t *sl, char names[][32]) {
    for (int64_t i = 0; i < S; i++) {
        cat[i] = "widget";
        snprintf(names[i], 32, "%04lld", (long long)i);
        sid[i] = names[i];
        acl[i] = i % 2 ? "AK" : "OK";
        sl[i] = i % 2;
        for (int v = 0; v < V; v++) {
            ip[i * V + v] = "img.jpg";
            mp[i * V + v] = i % 2 ? "m.png" : "";
            vl[i * V + v] = (i % 2) && v == 1;
        }
    }
}

static void cache_roundtrip(bool half) {
    enum { S = 5, V = 3, N = 4, D = 6, H = 8, W = 8 };
    char path[300];
    snprintf(path, sizeof path, "%s/train%s.h5", tmpdir, half ? "16" : "32");
    const char *cat[S], *sid[S], *acl[S], *ip[S * V], *mp[S * V];
    int64_t vl[S * V], sl[S];
    char names[S][32];
    make_meta(S, V, cat, sid, acl, ip, mp, vl, sl, names);
    mvd_cache_info info = {.S = S, .V = V, .N = N, .D = D, .H = H, .W = W, .P = 4, .grid_h = 2, .grid_w = 2,
                           .layer = 7, .half = half, .has_masks = true};
    snprintf(info.backbone, sizeof info.backbone, "tiny");
    snprintf(info.backbone_hash, sizeof info.backbone_hash, "h1");
    snprintf(info.split, sizeof info.split, "test");
    mvd_cache_meta meta = {cat, sid, acl, ip, mp, vl, sl};
    float feat[S][V * N * D];
    uint8_t masks[S][V * H * W];
    mvt_rng rng;
    mvt_rng_seed(&rng, 3);
    for (int i = 0; i < S; i++) {
        for (int k = 0; k < V * N * D; k++) feat[i][k] = (float)(mvt_rng_normal(&rng) * 3.0);
        for (int k = 0; k < V * H * W; k++) masks[i][k] = (uint8_t)((k + i) % 7 == 0);
    }
    int64_t done = -1;
    mvd_cache_writer *w = mvd_cache_begin(path, &info, &meta, &done);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(done, 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(mvd_cache_write(w, i, feat[i], masks[i]), 0);
    /* out of order is refused */
    ck_assert_int_ne(mvd_cache_write(w, 4, feat[4], masks[4]), 0);
    mvd_cache_close_writer(w);   /* "killed" after 3 samples */
    ck_assert_ptr_null(mvd_cache_open(path));   /* no complete file under the final name */

    /* resume continues at sample 3 */
    w = mvd_cache_begin(path, &info, &meta, &done);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(done, 3);
    for (int i = 3; i < S; i++) ck_assert_int_eq(mvd_cache_write(w, i, feat[i], masks[i]), 0);
    ck_assert_int_eq(mvd_cache_finish(w), 0);

    mvd_cache *c = mvd_cache_open(path);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->info.S, S);
    ck_assert_str_eq(c->sample_id[3], "0003");
    ck_assert_str_eq(c->anomaly_class[1], "AK");
    ck_assert_int_eq(c->view_label[1 * V + 1], 1);
    float got[V * N * D];
    uint8_t gm[V * H * W];
    for (int i = 0; i < S; i++) {
        ck_assert_int_eq(mvd_cache_read(c, i, got), 0);
        for (int k = 0; k < V * N * D; k++) {
            float want = half ? mvd_f16_to_f32(mvd_f32_to_f16(feat[i][k])) : feat[i][k];
            ck_assert_float_eq(got[k], want);
            if (half) ck_assert_float_le(fabsf(got[k] - feat[i][k]), 1e-3f * (1 + fabsf(feat[i][k])));
        }
        ck_assert_int_eq(mvd_cache_read_masks(c, i, gm), 0);
        ck_assert_int_eq(memcmp(gm, masks[i], sizeof gm), 0);
    }
    ck_assert_int_ne(mvd_cache_read(c, S, got), 0);
    mvd_cache_close(c);

    /* a partial made with other options is not resumed silently */
    char p2[320];
    snprintf(p2, sizeof p2, "%s/other.h5", tmpdir);
    w = mvd_cache_begin(p2, &info, &meta, &done);
    ck_assert_int_eq(mvd_cache_write(w, 0, feat[0], masks[0]), 0);
    mvd_cache_close_writer(w);
    mvd_cache_info other = info;
    other.layer = 6;
    ck_assert_ptr_null(mvd_cache_begin(p2, &other, &meta, &done));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "other options"));
}

START_TEST(test_cache_f32) { cache_roundtrip(false); }
END_TEST
START_TEST(test_cache_f16) { cache_roundtrip(true); }
END_TEST

START_TEST(test_cache_rejects_nan) {
    char path[300];
    snprintf(path, sizeof path, "%s/nan.h5", tmpdir);
    const char *cat[1] = {"c"}, *sid[1] = {"1"}, *acl[1] = {"OK"}, *ip[1] = {"i"}, *mp[1] = {""};
    int64_t vl[1] = {0}, sl[1] = {0};
    mvd_cache_info info = {.S = 1, .V = 1, .N = 1, .D = 2, .H = 4, .W = 4, .P = 4, .grid_h = 1, .grid_w = 1, .layer = 1};
    snprintf(info.split, sizeof info.split, "train");
    mvd_cache_meta meta = {cat, sid, acl, ip, mp, vl, sl};
    int64_t done;
    mvd_cache_writer *w = mvd_cache_begin(path, &info, &meta, &done);
    float f[2] = {1.0f, NAN};
    ck_assert_int_ne(mvd_cache_write(w, 0, f, NULL), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "NaN"));
    mvd_cache_close_writer(w);
}
END_TEST

START_TEST(test_f16_conversion) {
    /* exact values, rounding to nearest even, overflow, subnormals */
    ck_assert_uint_eq(mvd_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(mvd_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(mvd_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(mvd_f32_to_f16(1e6f), 0x7c00);
    ck_assert_uint_eq(mvd_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);          /* halfway: to even */
    ck_assert_uint_eq(mvd_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);          /* halfway: to even (up) */
    ck_assert_uint_eq(mvd_f32_to_f16(5.9604645e-8f), 0x0001);               /* smallest subnormal */
    for (uint32_t h = 0; h < 0x7c00; h++) ck_assert_uint_eq(mvd_f32_to_f16(mvd_f16_to_f32((uint16_t)h)), h);
}
END_TEST

static int parse_args(mvead_config *c, const char *const *accepted, int n, const char **args) {
    char *pos[4];
    int np;
    mvead_config_defaults(c);
    return mvead_config_parse(c, "test", "summary", accepted, n, (char **)args, pos, 4, &np);
}

START_TEST(test_options) {
    mvead_config c;
    const char *a1[] = {"--epochs", "3", "--lr=0.5", "--fusion", "mvas", "--no-heatmaps", "--image-size", "112"};
    ck_assert_int_eq(parse_args(&c, NULL, 8, a1), 0);
    ck_assert_int_eq(c.epochs, 3);
    ck_assert_double_eq(c.lr, 0.5);
    ck_assert_str_eq(c.fusion, "mvas");
    ck_assert(!c.heatmaps);
    ck_assert_int_eq(c.image_size, 112);

    const char *bad1[] = {"--fusion", "bogus"};
    ck_assert_int_ne(parse_args(&c, NULL, 2, bad1), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "--fusion"));
    const char *bad2[] = {"--epochs", "-1"};
    ck_assert_int_ne(parse_args(&c, NULL, 2, bad2), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "--epochs"));
    const char *bad3[] = {"--lr", "abc"};
    ck_assert_int_ne(parse_args(&c, NULL, 2, bad3), 0);
    const char *bad4[] = {"--nonsense", "1"};
    ck_assert_int_ne(parse_args(&c, NULL, 2, bad4), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "--nonsense"));
    const char *acc[] = {"epochs", NULL};
    const char *bad5[] = {"--lr", "1"};
    ck_assert_int_ne(parse_args(&c, acc, 2, bad5), 0);   /* option of another command */
    const char *bad6[] = {"--epochs"};
    ck_assert_int_ne(parse_args(&c, NULL, 1, bad6), 0);

    /* the JSON written back reproduces the options; the command line overrides a config file */
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    ck_assert_int_eq(parse_args(&c, NULL, 8, a1), 0);
    ck_assert_int_eq(mvead_config_write_json(&c, path), 0);
    const char *a2[] = {"--config", path, "--epochs", "9"};
    mvead_config d;
    ck_assert_int_eq(parse_args(&d, NULL, 4, a2), 0);
    ck_assert_int_eq(d.epochs, 9);
    d.epochs = c.epochs;
    ck_assert_int_eq(memcmp(&c, &d, sizeof c), 0);

    FILE *f = fopen(path, "w");
    fputs("{\"epochs\": \"three\"}", f);
    fclose(f);
    ck_assert_int_ne(mvead_config_load_json(&d, path), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "epochs"));
    f = fopen(path, "w");
    fputs("{\"bogus\": 1}", f);
    fclose(f);
    ck_assert_int_ne(mvead_config_load_json(&d, path), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "bogus"));
    f = fopen(path, "w");
    fputs("{\"epochs\": 3", f);
    fclose(f);
    ck_assert_int_ne(mvead_config_load_json(&d, path), 0);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), path));
}
END_TEST

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Under the budget the buffer is plain memory, over it an unlinked mapped
 * file; both zeroed and usable as an array, and no file stays behind. */
START_TEST(test_scratch) {
    const size_t n = 300000;   /* 1.2 MB */
    int before = count_entries(tmpdir);
    for (int over = 0; over < 2; over++) {
        mvead_scratch b;
        ck_assert_int_eq(mvead_scratch_alloc(&b, n, over ? n * 4 - 1 : n * 4, tmpdir, "test"), 0);
        ck_assert(b.mapped == (over == 1));
        ck_assert_uint_eq(b.n, n);
        ck_assert_int_eq(count_entries(tmpdir), before);   /* unlinked at once */
        for (size_t i = 0; i < n; i++) ck_assert(b.data[i] == 0.0f);
        for (size_t i = 0; i < n; i++) b.data[i] = (float)i * 0.5f;
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += b.data[i];
        ck_assert(sum == 0.5 * (double)n * (double)(n - 1) / 2.0);
        mvead_scratch_free(&b);
        ck_assert_ptr_null(b.data);
    }
    ck_assert_uint_eq(mvead_memory_budget(2.5), (size_t)(2.5 * 1048576));
    ck_assert_uint_gt(mvead_memory_budget(0), 0);
    /* a folder that does not exist, a size no disk has: named errors */
    mvead_scratch b;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir", tmpdir);
    ck_assert_int_eq(mvead_scratch_alloc(&b, n, 0, missing, "fused rows"), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "fused rows"));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), missing));
    ck_assert_int_eq(mvead_scratch_alloc(&b, (size_t)1 << 60, 0, tmpdir, "fused rows"), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), tmpdir));
    ck_assert_int_eq(count_entries(tmpdir), before);
    /* a pool: arrays stay in memory while they fit together under its budget */
    mvead_scratch_pool pool;
    mvead_scratch_pool_init(&pool, 1000, tmpdir);
    char *a = mvead_scratch_pool_alloc(&pool, 600, "a"), *c = mvead_scratch_pool_alloc(&pool, 600, "c");
    ck_assert(a && c);
    ck_assert(!pool.items[0].mapped && pool.items[1].mapped);
    ck_assert_uint_eq(pool.in_memory, 600);
    memset(a, 1, 600);
    memset(c, 2, 600);
    mvead_scratch_pool_release(&pool, a);
    ck_assert_uint_eq(pool.in_memory, 0);
    char *d = mvead_scratch_pool_alloc(&pool, 1000, "d");
    ck_assert_ptr_nonnull(d);
    ck_assert(c[599] == 2 && d[999] == 0);
    ck_assert_uint_eq(pool.in_memory, 1000);
    mvead_scratch_pool_free(&pool);
    ck_assert_int_eq(pool.n, 0);
    ck_assert_int_eq(count_entries(tmpdir), before);
}
END_TEST

int main(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_h5io_roundtrip_and_checks);
    tcase_add_test(tc, test_h5io_checksum_detects_flip);
    tcase_add_test(tc, test_cache_f32);
    tcase_add_test(tc, test_cache_f16);
    tcase_add_test(tc, test_cache_rejects_nan);
    tcase_add_test(tc, test_f16_conversion);
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_scratch);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
