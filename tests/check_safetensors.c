/* Tests for nn/safetensors, nn/config and nn/weights: round trips, every
 * corruption rule, F16/BF16 conversion against hand-computed values, config
 * presets, torch-hub names, and the HDF5 checkpoint (round trip, checksum,
 * missing/extra/mis-shaped tensors). Fixture parts skip when absent. */
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/config.h"
#include "nn/safetensors.h"
#include "nn/weights.h"
#include "tensor/error.h"
#include "tests/fixtures.h"

static char tmpdir[256];

static void setup(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_st.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Writes an 8-byte header size (hsize, or strlen(json) when hsize < 0), the
 * JSON and ndata bytes of data (a counting pattern). */
static const char *write_raw(const char *name, const char *json, long long hsize, size_t ndata) {
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t h = hsize < 0 ? strlen(json) : (uint64_t)hsize;
    fwrite(&h, 8, 1, f);
    fwrite(json, 1, strlen(json), f);
    for (size_t i = 0; i < ndata; i++) fputc((int)(i & 0x7f), f);
    fclose(f);
    return p;
}

/* Opens p expecting failure; checks the message contains the path and each needle. */
static void expect_error(const char *p, const char *needle1, const char *needle2) {
    mv_error_clear();
    mvn_safetensors *st = mvn_st_open(p);
    if (st) mvn_st_close(st);
    ck_assert_msg(st == NULL, "%s: expected an error (%s)", p, needle1);
    const char *msg = mv_error_last();
    ck_assert_msg(msg && strstr(msg, p), "message does not name the file: %s", msg);
    ck_assert_msg(strstr(msg, needle1), "message '%s' lacks '%s'", msg, needle1);
    if (needle2) ck_assert_msg(strstr(msg, needle2), "message '%s' lacks '%s'", msg, needle2);
}

static mvt_tensor *arange_f32(int ndim, const int64_t *shape, double scale) {
    mvt_tensor *t = mvt_empty(MVT_F32, ndim, shape);
    float *p = mvt_f32(t);
    for (int64_t i = 0; i < mvt_numel(t); i++) p[i] = (float)((double)(i % 97) * scale - 1.5);
    return t;
}

/* ---- round trips ------------------------------------------------------------ */

START_TEST(test_roundtrip_f32_f64) {
    int64_t s1[2] = {3, 5}, s2[1] = {7}, s3[4] = {2, 3, 2, 2}, s0[1] = {0};
    mvt_tensor *ts[4] = {arange_f32(2, s1, 0.37), arange_f32(1, s2, -1.1), arange_f32(4, s3, 3.0), mvt_empty(MVT_F32, 1, s0)};
    mvt_tensor *sc = mvt_scalar(MVT_F64, 2.718281828459045);
    const char *names[5] = {"layer.a", "b", "c.weight", "empty", "scalar"};
    const mvt_tensor *all[5] = {ts[0], ts[1], ts[2], ts[3], sc};
    const char *p32 = tpath("rt32.safetensors"), *p64 = tpath("rt64.safetensors");
    ck_assert_int_eq(mvn_st_write(p32, 5, names, all, MVN_ST_F32), 0);
    ck_assert_int_eq(mvn_st_write(p64, 5, names, all, MVN_ST_F64), 0);
    for (int pass = 0; pass < 2; pass++) {
        mvn_safetensors *st = mvn_st_open(pass ? p64 : p32);
        ck_assert_msg(st != NULL, "%s", mv_error_last());
        ck_assert_int_eq(st->n, 5);
        ck_assert_ptr_nonnull(st->metadata_json);
        for (int i = 0; i < 5; i++) {
            ck_assert_str_eq(st->entries[i].name, names[i]);   /* header order kept */
            ck_assert_int_eq(st->entries[i].dtype, pass ? MVN_ST_F64 : MVN_ST_F32);
            mvt_tensor *r = mvn_st_read(st, names[i], MVT_F64);
            ck_assert_ptr_nonnull(r);
            ck_assert_int_eq(r->ndim, all[i]->ndim);
            ck_assert(mvt_same_shape(r, all[i]));
            for (int64_t k = 0; k < mvt_numel(r); k++) {
                double want = i == 4 ? (pass ? 2.718281828459045 : (double)(float)2.718281828459045) : (double)mvt_f32(all[i])[k];
                ck_assert_msg(mvt_f64(r)[k] == want, "%s[%lld]: %.17g != %.17g", names[i], (long long)k, mvt_f64(r)[k], want);
            }
            mvt_release(r);
        }
        ck_assert_ptr_null(mvn_st_read(st, "nope", MVT_F32));
        ck_assert_ptr_nonnull(strstr(mv_error_last(), "nope"));
        mvn_st_close(st);
    }
    for (int i = 0; i < 4; i++) mvt_release(ts[i]);
    mvt_release(sc);
}
END_TEST

START_TEST(test_header_padding_and_metadata) {
    /* reference writers pad the header with spaces; "__metadata__" is allowed */
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}     ";
    const char *p = write_raw("pad.safetensors", json, -1, 8);
    mvn_safetensors *st = mvn_st_open(p);
    ck_assert_msg(st != NULL, "%s", mv_error_last());
    ck_assert_int_eq(st->n, 1);
    ck_assert_int_eq(mvn_st_find(st, "x"), 0);
    mvn_st_close(st);
    /* no tensors at all is a valid (empty) file */
    p = write_raw("empty.safetensors", "{}", -1, 0);
    st = mvn_st_open(p);
    ck_assert_msg(st != NULL, "%s", mv_error_last());
    ck_assert_int_eq(st->n, 0);
    mvn_st_close(st);
}
END_TEST

/* ---- conversions -------------------------------------------------------------- */

START_TEST(test_f16_bf16_values) {
    /* decode: hand-computed IEEE half values */
    ck_assert(mvn_f16_to_f32(0x3c00) == 1.0f);
    ck_assert(mvn_f16_to_f32(0xc000) == -2.0f);
    ck_assert(mvn_f16_to_f32(0x7bff) == 65504.0f);
    ck_assert(mvn_f16_to_f32(0x3555) == 0.333251953125f);
    ck_assert(mvn_f16_to_f32(0x0001) == ldexpf(1.0f, -24));      /* smallest subnormal */
    ck_assert(mvn_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));   /* largest subnormal */
    ck_assert(mvn_f16_to_f32(0x0400) == ldexpf(1.0f, -14));      /* smallest normal */
    ck_assert(isinf(mvn_f16_to_f32(0x7c00)) && mvn_f16_to_f32(0x7c00) > 0);
    ck_assert(isinf(mvn_f16_to_f32(0xfc00)) && mvn_f16_to_f32(0xfc00) < 0);
    ck_assert(isnan(mvn_f16_to_f32(0x7e00)));
    ck_assert(mvn_f16_to_f32(0x8000) == 0.0f && signbit(mvn_f16_to_f32(0x8000)));
    /* bfloat16 is the top half of a float32 */
    ck_assert(mvn_bf16_to_f32(0x3f80) == 1.0f);
    ck_assert(mvn_bf16_to_f32(0xc049) == -3.140625f);
    ck_assert(mvn_bf16_to_f32(0x4120) == 10.0f);
    ck_assert(isinf(mvn_bf16_to_f32(0x7f80)));
    ck_assert(isnan(mvn_bf16_to_f32(0x7fc0)));
    /* encode, round to nearest even */
    ck_assert_uint_eq(mvn_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(mvn_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(mvn_f32_to_f16(0.1f), 0x2e66);
    ck_assert_uint_eq(mvn_f32_to_f16(1.0f / 3.0f), 0x3555);
    ck_assert_uint_eq(mvn_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(mvn_f32_to_f16(65519.0f), 0x7bff);
    ck_assert_uint_eq(mvn_f32_to_f16(65520.0f), 0x7c00);
    ck_assert_uint_eq(mvn_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);
    ck_assert_uint_eq(mvn_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);          /* tie -> even (0) */
    ck_assert_uint_eq(mvn_f32_to_f16(ldexpf(3.0f, -26)), 0x0001);          /* 0.75 ulp -> 1 */
    ck_assert_uint_eq(mvn_f32_to_f16(ldexpf(3.0f, -25)), 0x0002);          /* 1.5 ulp tie -> even (2) */
    ck_assert_uint_eq(mvn_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);   /* tie -> even */
    ck_assert_uint_eq(mvn_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02);   /* tie -> even */
    ck_assert_uint_eq(mvn_f32_to_f16(INFINITY), 0x7c00);
    ck_assert_uint_eq(mvn_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(mvn_f32_to_bf16(3.14159265f), 0x4049);
    ck_assert_uint_eq(mvn_f32_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3f80);   /* tie -> even */
    ck_assert_uint_eq(mvn_f32_to_bf16(1.0f + ldexpf(3.0f, -8)), 0x3f82);   /* tie -> even */
    /* every finite half survives decode -> encode */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        ck_assert_uint_eq(mvn_f32_to_f16(mvn_f16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

START_TEST(test_f16_bf16_files) {
    /* a hand-made file: F16 [1, -2, 0.333251953125, 2^-24], BF16 [1, -3.140625] */
    const char *json = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}";
    const char *p = tpath("half.safetensors");
    FILE *f = fopen(p, "wb");
    uint64_t h = strlen(json);
    fwrite(&h, 8, 1, f);
    fwrite(json, 1, h, f);
    uint16_t data[6] = {0x3c00, 0xc000, 0x3555, 0x0001, 0x3f80, 0xc049};
    fwrite(data, 2, 6, f);
    fclose(f);
    mvn_safetensors *st = mvn_st_open(p);
    ck_assert_msg(st != NULL, "%s", mv_error_last());
    mvt_tensor *t = mvn_st_read(st, "h", MVT_F32);
    const float want[4] = {1.0f, -2.0f, 0.333251953125f, 5.9604644775390625e-08f};
    for (int i = 0; i < 4; i++) ck_assert(mvt_f32(t)[i] == want[i]);
    mvt_release(t);
    t = mvn_st_read(st, "b", MVT_F64);
    ck_assert(mvt_f64(t)[0] == 1.0 && mvt_f64(t)[1] == -3.140625);
    mvt_release(t);
    mvn_st_close(st);

    /* writer: F16/BF16 files hold the rounded values */
    int64_t s[1] = {4};
    mvt_tensor *v = mvt_empty(MVT_F64, 1, s);
    const double vals[4] = {0.1, 1.0 / 3.0, -65504.0, 3.14159265};
    for (int i = 0; i < 4; i++) mvt_f64(v)[i] = vals[i];
    const char *names[1] = {"v"};
    const mvt_tensor *ts[1] = {v};
    ck_assert_int_eq(mvn_st_write(tpath("w16.safetensors"), 1, names, ts, MVN_ST_F16), 0);
    ck_assert_int_eq(mvn_st_write(tpath("wbf.safetensors"), 1, names, ts, MVN_ST_BF16), 0);
    st = mvn_st_open(tpath("w16.safetensors"));
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(st->entries[0].end - st->entries[0].begin, 8);
    t = mvn_st_read(st, "v", MVT_F32);
    for (int i = 0; i < 4; i++) ck_assert(mvt_f32(t)[i] == mvn_f16_to_f32(mvn_f32_to_f16((float)vals[i])));
    ck_assert(mvt_f32(t)[0] == mvn_f16_to_f32(0x2e66));
    mvt_release(t);
    mvn_st_close(st);
    st = mvn_st_open(tpath("wbf.safetensors"));
    ck_assert_ptr_nonnull(st);
    t = mvn_st_read(st, "v", MVT_F32);
    ck_assert(mvt_f32(t)[3] == mvn_bf16_to_f32(0x4049));
    mvt_release(t);
    mvn_st_close(st);
    mvt_release(v);
}
END_TEST

/* ---- corruptions ----------------------------------------------------------------- */

START_TEST(test_corrupt_truncated) {
    int64_t s[2] = {4, 4};
    mvt_tensor *a = arange_f32(2, s, 1.0);
    const char *names[1] = {"weights.a"};
    const mvt_tensor *ts[1] = {a};
    const char *p = tpath("trunc.safetensors");
    ck_assert_int_eq(mvn_st_write(p, 1, names, ts, MVN_ST_F32), 0);
    FILE *f = fopen(p, "rb");
    uint64_t h;
    ck_assert_int_eq(fread(&h, 8, 1, f), 1);
    fclose(f);
    ck_assert_int_eq(truncate(p, (off_t)(8 + h + 60)), 0);   /* cut inside the data */
    expect_error(p, "truncated", NULL);
    ck_assert_int_eq(truncate(p, 5), 0);           /* shorter than the size field */
    expect_error(p, "truncated", NULL);
    mvt_release(a);
}
END_TEST

START_TEST(test_corrupt_header_size) {
    const char *json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    expect_error(write_raw("hs1.safetensors", json, 1LL << 40, 4), "header size", NULL);
    expect_error(write_raw("hs2.safetensors", json, (long long)strlen(json) + 100, 4), "header size", NULL);
    expect_error(write_raw("hs3.safetensors", json, 0, 4), "header size", NULL);
}
END_TEST

START_TEST(test_corrupt_json) {
    expect_error(write_raw("j1.safetensors", "{\"x\": {\"dtype\": \"F32\", ", -1, 0), "JSON", NULL);
    expect_error(write_raw("j2.safetensors", "[1, 2, 3]", -1, 0), "JSON", NULL);
    expect_error(write_raw("j3.safetensors", "{\"x\": nul}", -1, 0), "JSON", NULL);
    expect_error(write_raw("j4.safetensors", "{} trailing", -1, 0), "JSON", NULL);
    expect_error(write_raw("j5.safetensors", "{\"x\": 3}", -1, 0), "'x'", NULL);
    expect_error(write_raw("j6.safetensors", "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4), "'x'", "dtype");
    expect_error(write_raw("j7.safetensors", "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4), "'x'", "shape");
    expect_error(write_raw("j8.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", -1, 4), "'x'", "data_offsets");
    expect_error(write_raw("j9.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4), "'x'", "shape");
    expect_error(write_raw("j10.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", -1, 4), "'x'", "data_offsets");
    expect_error(write_raw("j11.safetensors", "{\"__metadata__\":[1]}", -1, 0), "__metadata__", NULL);
}
END_TEST

START_TEST(test_corrupt_offsets) {
    /* out of range */
    expect_error(write_raw("o1.safetensors",
                           "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[1000,1016]}}", -1, 32),
                 "out of range", "'b'");
    /* overlapping */
    expect_error(write_raw("o2.safetensors",
                           "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", -1, 24),
                 "overlap", "'b'");
    /* non-contiguous (a gap) */
    expect_error(write_raw("o3.safetensors",
                           "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[20,36]}}", -1, 36),
                 "contiguous", "'b'");
    /* first tensor not at 0 */
    expect_error(write_raw("o4.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8),
                 "contiguous", "'a'");
    /* end before begin */
    expect_error(write_raw("o5.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", -1, 8),
                 "'a'", "data_offsets");
    /* bytes left after the last tensor */
    expect_error(write_raw("o6.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 12),
                 "after the last tensor", NULL);
}
END_TEST

START_TEST(test_corrupt_size_and_dtype) {
    expect_error(write_raw("s1.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", -1, 12),
                 "size mismatch", "'w'");
    expect_error(write_raw("s2.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,12]}}", -1, 12),
                 "size mismatch", "'w'");
    expect_error(write_raw("d1.safetensors", "{\"w\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", -1, 4),
                 "dtype", "'w'");
    expect_error(write_raw("d2.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,2]}}", -1, 2),
                 "dtype", "'w'");
    expect_error(write_raw("d3.safetensors", "{\"w\":{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,2]}}", -1, 2),
                 "dtype", "'w'");
    /* missing file */
    expect_error(tpath("does_not_exist.safetensors"), "cannot open", NULL);
}
END_TEST

/* ---- config ---------------------------------------------------------------------- */

START_TEST(test_config_presets) {
    mvn_vit_config c;
    ck_assert_int_eq(mvn_config_preset("vits14", &c), 0);
    ck_assert_int_eq(c.hidden_size, 384); ck_assert_int_eq(c.num_hidden_layers, 12); ck_assert_int_eq(c.num_attention_heads, 6);
    ck_assert_int_eq(c.image_size, 518); ck_assert_int_eq(c.patch_size, 14); ck_assert_int_eq(mvn_config_mlp_hidden(&c), 1536);
    ck_assert_int_eq(mvn_config_preset("vitb14", &c), 0);
    ck_assert_int_eq(c.hidden_size, 768); ck_assert_int_eq(c.num_hidden_layers, 12); ck_assert_int_eq(c.num_attention_heads, 12);
    ck_assert_int_eq(mvn_config_grid(&c), 37);
    ck_assert_int_eq(mvn_config_preset("dinov2_vitl14", &c), 0);
    ck_assert_int_eq(c.hidden_size, 1024); ck_assert_int_eq(c.num_hidden_layers, 24); ck_assert_int_eq(c.num_attention_heads, 16);
    ck_assert_int_eq(mvn_config_preset("vitg14", &c), 0);
    ck_assert_int_eq(c.hidden_size, 1536); ck_assert_int_eq(c.num_hidden_layers, 40); ck_assert_int_eq(c.num_attention_heads, 24);
    ck_assert(c.use_swiglu_ffn);
    ck_assert_int_eq(mvn_config_mlp_hidden(&c), 4096);   /* DINOv2 giant: SwiGLU width 4096 */
    ck_assert_int_eq(mvn_config_preset("vitx99", &c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "vitx99"));
    /* the SwiGLU rule on a tiny model: D 64, ratio 4 -> int(256 * 2/3) = 170 -> 176 */
    mvn_config_defaults(&c);
    c.hidden_size = 64; c.use_swiglu_ffn = true;
    ck_assert_int_eq(mvn_config_mlp_hidden(&c), 176);
}
END_TEST

START_TEST(test_config_json) {
    mvn_vit_config c;
    ck_assert_int_eq(mvn_config_parse_json("{\"hidden_size\": 32, \"num_attention_heads\": 2, \"num_hidden_layers\": 3,"
                                           "\"image_size\": 56, \"patch_size\": 14, \"use_swiglu_ffn\": true,"
                                           "\"num_register_tokens\": 4, \"layer_norm_eps\": 1e-5, \"qkv_bias\": false}", "t1", &c), 0);
    ck_assert_int_eq(c.hidden_size, 32); ck_assert_int_eq(c.num_attention_heads, 2); ck_assert_int_eq(c.num_hidden_layers, 3);
    ck_assert_int_eq(c.num_register_tokens, 4); ck_assert(c.use_swiglu_ffn); ck_assert(!c.qkv_bias);
    ck_assert(c.layer_norm_eps == 1e-5); ck_assert(c.layerscale); ck_assert(c.mlp_ratio == 4.0);
    ck_assert_int_eq(mvn_config_parse_json("{\"hidden_size\": 30, \"num_attention_heads\": 4}", "t2", &c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "divisible"));
    ck_assert_int_eq(mvn_config_parse_json("{\"hidden_size\": \"big\"}", "t3", &c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "hidden_size"));
    ck_assert_int_eq(mvn_config_parse_json("{\"hidden_size\": ", "t4", &c), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "t4"));
    ck_assert_int_eq(mvn_config_parse_json("{\"model_type\": \"vit\"}", "t5", &c), -1);
    /* save -> load round trip */
    mvn_config_preset("vitg14", &c);
    c.num_register_tokens = 4;
    c.pos_interp = MVN_POS_HUB;
    ck_assert_int_eq(mvn_config_save_json(tpath("config.json"), &c), 0);
    mvn_vit_config d;
    ck_assert_int_eq(mvn_config_load_json(tpath("config.json"), &d), 0);
    ck_assert_int_eq(d.hidden_size, 1536); ck_assert_int_eq(d.num_register_tokens, 4); ck_assert(d.use_swiglu_ffn);
    ck_assert_int_eq(d.pos_interp, MVN_POS_HUB); ck_assert(d.layer_norm_eps == c.layer_norm_eps);
    ck_assert_int_eq(mvn_config_load_json(tpath("nope.json"), &d), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "nope.json"));
}
END_TEST

/* ---- weights: states, hub names, HDF5 ---------------------------------------------- */

static void tiny_config(mvn_vit_config *c, bool swiglu, int regs) {
    mvn_config_defaults(c);
    c->hidden_size = 16; c->num_hidden_layers = 2; c->num_attention_heads = 2;
    c->patch_size = 4; c->image_size = 12; c->use_swiglu_ffn = swiglu; c->num_register_tokens = regs;
}

static mvn_state *random_state(const mvn_vit_config *c, uint64_t seed) {
    mvn_param_spec *sp;
    int n = mvn_param_specs(c, &sp);
    mvn_state *s = mvn_state_new();
    mvt_rng r;
    mvt_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        mvt_tensor *t = mvt_empty(MVT_F32, sp[i].ndim, sp[i].shape);
        mvt_fill_normal(t, &r, 0.0, 1.0);
        mvn_state_put(s, sp[i].name, t);
    }
    free(sp);
    return s;
}

static void assert_states_equal(const mvn_state *a, const mvn_state *b) {
    ck_assert_int_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const mvt_tensor *y = mvn_state_get(b, a->names[i]);
        ck_assert_msg(y != NULL, "tensor %s missing", a->names[i]);
        ck_assert_msg(mvt_same_shape(a->tensors[i], y), "tensor %s shape", a->names[i]);
        int64_t where;
        double d = mvt_max_abs_diff(a->tensors[i], y, &where);
        ck_assert_msg(d == 0.0, "tensor %s differs by %g at %lld", a->names[i], d, (long long)where);
    }
}

START_TEST(test_state_check_errors) {
    mvn_vit_config c;
    tiny_config(&c, false, 0);
    mvn_state *s = random_state(&c, 1);
    ck_assert_int_eq(mvn_state_check(s, &c, "w"), 0);
    /* mis-shaped */
    int64_t bad[2] = {16, 15};
    mvn_state_put(s, "encoder.layer.1.mlp.fc2.weight", mvt_zeros(MVT_F32, 2, bad));
    ck_assert_int_eq(mvn_state_check(s, &c, "w"), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "encoder.layer.1.mlp.fc2.weight"));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "shape"));
    mvn_state_free(s);
    /* missing */
    s = random_state(&c, 1);
    mvn_state *t = mvn_state_new();
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], "encoder.layer.0.norm2.bias")) mvn_state_put(t, s->names[i], mvt_retain(s->tensors[i]));
    ck_assert_int_eq(mvn_state_check(t, &c, "w"), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "missing tensor 'encoder.layer.0.norm2.bias'"));
    /* extra */
    int64_t one[1] = {1};
    mvn_state_put(s, "head.weight", mvt_zeros(MVT_F32, 1, one));
    ck_assert_int_eq(mvn_state_check(s, &c, "w"), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "'head.weight'"));
    mvn_state_free(s);
    mvn_state_free(t);
}
END_TEST

/* torch-hub key -> HF key as the DINOv2 checkpoints spell them: the oracle
 * for mvn_state_hf_to_hub / mvn_state_hub_to_hf (a key absent from the HF
 * state, e.g. mlp.fc1 in a SwiGLU model, is not checked). */
static const char *const hub_spec[][2] = {
    {"cls_token", "embeddings.cls_token"},
    {"pos_embed", "embeddings.position_embeddings"},
    {"register_tokens", "embeddings.register_tokens"},
    {"patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"},
    {"patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"},
    {"norm.weight", "layernorm.weight"},
    {"norm.bias", "layernorm.bias"},
    {"blocks.0.norm1.weight", "encoder.layer.0.norm1.weight"},
    {"blocks.1.norm2.bias", "encoder.layer.1.norm2.bias"},
    {"blocks.0.attn.proj.weight", "encoder.layer.0.attention.output.dense.weight"},
    {"blocks.1.attn.proj.bias", "encoder.layer.1.attention.output.dense.bias"},
    {"blocks.0.ls1.gamma", "encoder.layer.0.layer_scale1.lambda1"},
    {"blocks.1.ls2.gamma", "encoder.layer.1.layer_scale2.lambda1"},
    {"blocks.0.mlp.fc1.weight", "encoder.layer.0.mlp.fc1.weight"},
    {"blocks.1.mlp.fc2.bias", "encoder.layer.1.mlp.fc2.bias"},
    {"blocks.0.mlp.w12.weight", "encoder.layer.0.mlp.weights_in.weight"},
    {"blocks.1.mlp.w3.bias", "encoder.layer.1.mlp.weights_out.bias"},
};

/* The torch-hub naming of an HF state through the library, checked against
 * hub_spec and the q|k|v row blocks of attn.qkv; layer 1 then takes the
 * chunked form blocks.0.1.* that block-chunked hub checkpoints use. */
static mvn_state *to_hub_names(const mvn_state *s) {
    mvn_state *h = mvn_state_new();
    for (int i = 0; i < s->n; i++) mvn_state_put(h, s->names[i], mvt_retain(s->tensors[i]));
    ck_assert_msg(mvn_state_hf_to_hub(h, "hf") == 0, "%s", mv_error_last());
    for (size_t j = 0; j < sizeof hub_spec / sizeof hub_spec[0]; j++) {
        const mvt_tensor *want = mvn_state_get(s, hub_spec[j][1]);
        if (!want) continue;
        ck_assert_msg(mvn_state_get(h, hub_spec[j][0]) == want, "%s should hold %s", hub_spec[j][0], hub_spec[j][1]);
    }
    for (int l = 0; l < 2; l++) {
        char nm[96];
        snprintf(nm, sizeof nm, "blocks.%d.attn.qkv.weight", l);
        const mvt_tensor *qkv = mvn_state_get(h, nm);
        ck_assert_ptr_nonnull(qkv);
        static const char *const part[3] = {"query", "key", "value"};
        for (int r = 0; r < 3; r++) {
            snprintf(nm, sizeof nm, "encoder.layer.%d.attention.attention.%s.weight", l, part[r]);
            const mvt_tensor *w = mvn_state_get(s, nm);
            mvt_tensor *rows = mvt_narrow(qkv, 0, r * w->shape[0], w->shape[0]);
            ck_assert_msg(mvt_max_abs_diff(rows, w, NULL) == 0.0, "qkv rows %d of layer %d are not %s", r, l, nm);
            mvt_release(rows);
        }
    }
    ck_assert_int_eq(mvn_state_hf_to_hub(h, "hub"), -1);   /* hub keys are not HF keys */
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "not a DINOv2 HF key"));
    mvn_state *c = mvn_state_new();
    for (int i = 0; i < h->n; i++) {
        char nm[160];
        if (!strncmp(h->names[i], "blocks.1.", 9)) snprintf(nm, sizeof nm, "blocks.0.1.%s", h->names[i] + 9);
        else snprintf(nm, sizeof nm, "%s", h->names[i]);
        mvn_state_put(c, nm, mvt_retain(h->tensors[i]));
    }
    mvn_state_free(h);
    return c;
}

START_TEST(test_hub_names) {
    for (int variant = 0; variant < 2; variant++) {
        mvn_vit_config c;
        tiny_config(&c, variant == 1, variant == 1 ? 3 : 0);
        mvn_state *s = random_state(&c, 7 + variant);
        mvn_state *h = to_hub_names(s);
        ck_assert(mvn_state_is_hub(h));
        ck_assert(!mvn_state_is_hub(s));
        ck_assert_int_eq(mvn_state_hub_to_hf(h, "hub"), 0);
        ck_assert_int_eq(mvn_state_check(h, &c, "hub"), 0);
        assert_states_equal(s, h);
        mvn_state_free(h);
        /* an unknown hub key is named */
        h = to_hub_names(s);
        int64_t one[1] = {3};
        mvn_state_put(h, "blocks.0.attn.qkv.extra", mvt_zeros(MVT_F32, 1, one));
        ck_assert_int_eq(mvn_state_hub_to_hf(h, "hub"), -1);
        ck_assert_ptr_nonnull(strstr(mv_error_last(), "blocks.0.attn.qkv.extra"));
        mvn_state_free(h);
        /* safetensors with hub names, no config.json: loads and infers the config */
        h = to_hub_names(s);
        const char **names = malloc((size_t)h->n * sizeof *names);
        for (int i = 0; i < h->n; i++) names[i] = h->names[i];
        const char *p = tpath(variant ? "hub1.safetensors" : "hub0.safetensors");
        ck_assert_int_eq(mvn_st_write(p, h->n, names, (const mvt_tensor *const *)h->tensors, MVN_ST_F32), 0);
        free(names);
        mvn_vit_config inferred;
        mvn_state *got = mvn_weights_load(p, NULL, MVT_F32, &inferred);
        /* D = 16 is not a multiple of 64: inference must refuse and say why */
        ck_assert_ptr_null(got);
        ck_assert_ptr_nonnull(strstr(mv_error_last(), "config.json"));
        ck_assert_int_eq(mvn_config_save_json(tpath("cfg.json"), &c), 0);
        got = mvn_weights_load(p, tpath("cfg.json"), MVT_F64, &inferred);
        ck_assert_msg(got != NULL, "%s", mv_error_last());
        assert_states_equal(s, got);
        mvn_state_free(got);
        mvn_state_free(h);
        mvn_state_free(s);
    }
}
END_TEST

START_TEST(test_config_infer) {
    mvn_vit_config c, d;
    tiny_config(&c, true, 2);
    c.hidden_size = 128; c.num_attention_heads = 2;
    mvn_state *s = random_state(&c, 3);
    ck_assert_int_eq(mvn_config_infer(s, &d, "x"), 0);
    ck_assert_int_eq(d.hidden_size, 128); ck_assert_int_eq(d.num_attention_heads, 2);
    ck_assert_int_eq(d.num_hidden_layers, 2); ck_assert_int_eq(d.patch_size, 4); ck_assert_int_eq(d.image_size, 12);
    ck_assert(d.use_swiglu_ffn); ck_assert_int_eq(d.num_register_tokens, 2);
    ck_assert_int_eq(mvn_config_mlp_hidden(&d), mvn_config_mlp_hidden(&c));
    ck_assert_int_eq(mvn_state_check(s, &d, "x"), 0);
    mvn_state_free(s);
}
END_TEST

START_TEST(test_h5_roundtrip_and_checksum) {
    mvn_vit_config c;
    tiny_config(&c, true, 2);
    c.pos_interp = MVN_POS_HUB;
    mvn_state *s = random_state(&c, 11);
    const char *p = tpath("w.h5");
    ck_assert_msg(mvn_weights_save_h5(p, &c, s) == 0, "%s", mv_error_last());
    mvn_vit_config d;
    mvn_state *r = mvn_weights_load(p, NULL, MVT_F32, &d);
    ck_assert_msg(r != NULL, "%s", mv_error_last());
    assert_states_equal(s, r);
    ck_assert_int_eq(d.hidden_size, c.hidden_size); ck_assert_int_eq(d.num_register_tokens, 2);
    ck_assert(d.use_swiglu_ffn); ck_assert_int_eq(d.pos_interp, MVN_POS_HUB); ck_assert(d.layer_norm_eps == c.layer_norm_eps);
    mvn_state_free(r);
    /* a changed value is caught by the checksum */
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t ds = H5Dopen2(f, "layernorm.bias", H5P_DEFAULT);
    float vals[16];
    H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
    vals[3] += 1.0f;
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
    H5Dclose(ds);
    H5Fclose(f);
    ck_assert_ptr_null(mvn_weights_load_h5(p, &d, MVT_F32));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "checksum"));
    /* not a weights file */
    hid_t g = H5Fcreate(tpath("other.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(g);
    ck_assert_ptr_null(mvn_weights_load(tpath("other.h5"), NULL, MVT_F32, &d));
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "other.h5"));
    /* refuses to save an inconsistent state */
    int64_t one[1] = {1};
    mvn_state_put(s, "junk", mvt_zeros(MVT_F32, 1, one));
    ck_assert_int_eq(mvn_weights_save_h5(tpath("w2.h5"), &c, s), -1);
    ck_assert_ptr_nonnull(strstr(mv_error_last(), "junk"));
    ck_assert(access(tpath("w2.h5"), F_OK) != 0);
    mvn_state_free(s);
}
END_TEST

/* Fixture: import-weights of every dinov2_* model gives the same tensors as the safetensors. */
START_TEST(test_fixture_import) {
    DIR *d = opendir(fx_dir());
    if (!d) { fprintf(stderr, "\n*** SKIP: fixture dir %s missing ***\n\n", fx_dir()); return; }
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "dinov2_", 7)) continue;
        char rel[512];
        snprintf(rel, sizeof rel, "%s/model.safetensors", e->d_name);
        if (!fx_exists(rel)) continue;
        char st_path[4096], dst[600];
        snprintf(st_path, sizeof st_path, "%s", fx_path(rel));
        snprintf(dst, sizeof dst, "%s/%s.h5", tmpdir, e->d_name);
        found++;
        mvn_vit_config c1, c2;
        mvn_state *a = mvn_weights_load(st_path, NULL, MVT_F32, &c1);
        ck_assert_msg(a != NULL, "%s", mv_error_last());
        ck_assert_msg(mvn_import_weights(st_path, NULL, dst) == 0, "%s", mv_error_last());
        mvn_state *b = mvn_weights_load(dst, NULL, MVT_F32, &c2);
        ck_assert_msg(b != NULL, "%s", mv_error_last());
        assert_states_equal(a, b);
        ck_assert_int_eq(c1.hidden_size, c2.hidden_size);
        ck_assert_int_eq(c1.num_hidden_layers, c2.num_hidden_layers);
        ck_assert_int_eq(c1.use_swiglu_ffn, c2.use_swiglu_ffn);
        ck_assert(c1.layer_norm_eps == c2.layer_norm_eps);
        mvn_state_free(a);
        mvn_state_free(b);
    }
    closedir(d);
    if (!found) fprintf(stderr, "\n*** SKIP: no dinov2_* fixtures in %s ***\n\n", fx_dir());
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_f32_f64);
    tcase_add_test(tc, test_header_padding_and_metadata);
    tcase_add_test(tc, test_f16_bf16_values);
    tcase_add_test(tc, test_f16_bf16_files);
    tcase_add_test(tc, test_corrupt_truncated);
    tcase_add_test(tc, test_corrupt_header_size);
    tcase_add_test(tc, test_corrupt_json);
    tcase_add_test(tc, test_corrupt_offsets);
    tcase_add_test(tc, test_corrupt_size_and_dtype);
    tcase_add_test(tc, test_config_presets);
    tcase_add_test(tc, test_config_json);
    tcase_add_test(tc, test_state_check_errors);
    tcase_add_test(tc, test_hub_names);
    tcase_add_test(tc, test_config_infer);
    tcase_add_test(tc, test_h5_roundtrip_and_checksum);
    tcase_add_test(tc, test_fixture_import);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
