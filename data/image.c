/* image: JPEG (libjpeg-turbo) and PNG (libpng) reading and writing with
 * setjmp/longjmp error managers; see image.h. */
#include "data/image.h"
#include "data/fileio.h"
#include "tensor/error.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Files larger than this are refused before reading (a 32k x 32k RGB PNG is 3 GiB raw,
 * but no sane compressed image of ours is anywhere near 1 GiB). */
#define MVD_MAX_FILE_BYTES ((size_t)1 << 30)

int mvd_image_alloc(mvd_image *img, int width, int height, int channels) {
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0 || width > MVD_IMAGE_MAX_SIDE || height > MVD_IMAGE_MAX_SIDE)
        return mv_error("image: size %d x %d is out of range (1..%d per side)", width, height,
                        MVD_IMAGE_MAX_SIDE);
    if (channels != 1 && channels != 3)
        return mv_error("image: %d channels requested, expected 1 or 3", channels);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    img->data = calloc(n, 1);
    if (!img->data) return mv_error("image: out of memory for %d x %d x %d", width, height, channels);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return 0;
}

void mvd_image_free(mvd_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* Whole file into memory. */
static int read_file_bytes(const char *path, uint8_t **bytes, size_t *n) {
    *bytes = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mv_error("%s: cannot open image (%s)", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return mv_error("%s: cannot seek (%s)", path, strerror(errno));
    }
    long len = ftell(f);
    if (len < 0 || (size_t)len > MVD_MAX_FILE_BYTES) {
        fclose(f);
        return mv_error("%s: file size %ld is not readable or too large for an image", path, len);
    }
    rewind(f);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf) {
        fclose(f);
        return mv_error("%s: out of memory reading %ld bytes", path, len);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got != (size_t)len) {
        free(buf);
        return mv_error("%s: read error", path);
    }
    *bytes = buf;
    *n = (size_t)len;
    return 0;
}

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int premature_eof; /* libjpeg only warns on truncation; we treat it as an error */
} jpeg_err_ctx;

static void jpeg_err_exit(j_common_ptr cinfo) {
    jpeg_err_ctx *e = (jpeg_err_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_err_emit(j_common_ptr cinfo, int level) {
    jpeg_err_ctx *e = (jpeg_err_ctx *)cinfo->err;
    if (level < 0) { /* warning; trace messages (level >= 0) are ignored */
        if (cinfo->err->msg_code == JWRN_JPEG_EOF && !e->premature_eof) {
            e->premature_eof = 1;
            (*cinfo->err->format_message)(cinfo, e->msg);
        }
        cinfo->err->num_warnings++;
    }
}

static void jpeg_err_silent(j_common_ptr cinfo) { (void)cinfo; }

static int decode_jpeg(const uint8_t *bytes, size_t n, const char *name, mvd_image *out) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx err;
    uint8_t *volatile pixels = NULL; /* volatile: freed after a longjmp */
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_err_exit;
    err.pub.emit_message = jpeg_err_emit;
    err.pub.output_message = jpeg_err_silent;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return mv_error("%s: corrupt or unsupported JPEG (%s)", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)bytes, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    /* Check the declared size before start_decompress: a progressive JPEG
     * allocates its whole coefficient buffer there, so a tiny corrupt file
     * declaring 40000 x 30000 would otherwise take gigabytes. */
    if (cinfo.image_width == 0 || cinfo.image_height == 0 || cinfo.image_width > MVD_IMAGE_MAX_SIDE ||
        cinfo.image_height > MVD_IMAGE_MAX_SIDE ||
        (uint64_t)cinfo.image_width * cinfo.image_height > MVD_IMAGE_MAX_PIXELS) {
        int dw = (int)cinfo.image_width, dh = (int)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return mv_error("%s: JPEG declares %d x %d pixels (max side %d, max %lld pixels)", name, dw, dh,
                        MVD_IMAGE_MAX_SIDE, (long long)MVD_IMAGE_MAX_PIXELS);
    }
    cinfo.mem->max_memory_to_use = 1L << 30;
    int channels = cinfo.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (w <= 0 || h <= 0 || w > MVD_IMAGE_MAX_SIDE || h > MVD_IMAGE_MAX_SIDE ||
        (int)cinfo.output_components != channels) {
        jpeg_destroy_decompress(&cinfo);
        return mv_error("%s: JPEG size %d x %d x %d is unsupported (max side %d)", name, w, h,
                        (int)cinfo.output_components, MVD_IMAGE_MAX_SIDE);
    }
    size_t stride = (size_t)w * channels;
    pixels = malloc(stride * h);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return mv_error("%s: out of memory for a %d x %d JPEG", name, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (err.premature_eof) break;
    }
    if (err.premature_eof) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return mv_error("%s: truncated JPEG (%s)", name, err.msg);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (err.premature_eof) {
        free(pixels);
        return mv_error("%s: truncated JPEG (%s)", name, err.msg);
    }
    out->width = w;
    out->height = h;
    out->channels = channels;
    out->data = pixels;
    return 0;
}

/* ---- PNG ----------------------------------------------------------------- */

typedef struct {
    const uint8_t *bytes;
    size_t n, pos;
    char msg[256];
} png_io_ctx;

static void png_err_fn(png_structp png, png_const_charp msg) {
    png_io_ctx *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_mem(png_structp png, png_bytep dst, png_size_t len) {
    png_io_ctx *io = png_get_io_ptr(png);
    if (len > io->n - io->pos) png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(dst, io->bytes + io->pos, len);
    io->pos += len;
}

/* Decodes into out, or when any_nonzero != NULL only scans rows until a nonzero
 * byte is found (out is then unused and may be NULL). */
static int decode_png(const uint8_t *bytes, size_t n, const char *name, mvd_image *out,
                      int *any_nonzero) {
    png_io_ctx io;
    memset(&io, 0, sizeof io);
    io.bytes = bytes;
    io.n = n;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_err_fn, png_warn_fn);
    if (!png) return mv_error("%s: cannot create a PNG reader", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return mv_error("%s: cannot create a PNG reader", name);
    }
    uint8_t *volatile pixels = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        return mv_error("%s: corrupt or unsupported PNG (%s)", name, io.msg);
    }
    png_set_read_fn(png, &io, png_read_mem);
    png_set_user_limits(png, MVD_IMAGE_MAX_SIDE, MVD_IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 w32, h32;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &w32, &h32, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((uint64_t)w32 * h32 > MVD_IMAGE_MAX_PIXELS) {
        png_destroy_read_struct(&png, &info, NULL);
        return mv_error("%s: PNG declares %u x %u pixels (max %lld pixels)", name, (unsigned)w32, (unsigned)h32,
                        (long long)MVD_IMAGE_MAX_PIXELS);
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_scale_16(png);
    if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int w = (int)w32, h = (int)h32;
    int channels = png_get_channels(png, info);
    size_t stride = (size_t)w * channels;
    if ((channels != 1 && channels != 3) || png_get_rowbytes(png, info) != stride) {
        png_destroy_read_struct(&png, &info, NULL);
        return mv_error("%s: PNG with %d channels after conversion is unsupported", name, channels);
    }
    int scan_only = any_nonzero != NULL && passes == 1;
    pixels = malloc(scan_only ? stride : stride * h);
    if (!pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        return mv_error("%s: out of memory for a %d x %d PNG", name, w, h);
    }
    if (scan_only) {
        *any_nonzero = 0;
        for (int y = 0; y < h && !*any_nonzero; y++) {
            png_read_row(png, pixels, NULL);
            for (size_t i = 0; i < stride; i++)
                if (pixels[i]) { *any_nonzero = 1; break; }
        }
        /* stopped early: the rest of the file is not checked (by design: speed) */
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        return 0;
    }
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) png_read_row(png, pixels + stride * y, NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    if (any_nonzero) {
        *any_nonzero = 0;
        for (size_t i = 0; i < stride * h; i++)
            if (pixels[i]) { *any_nonzero = 1; break; }
        free(pixels);
        return 0;
    }
    out->width = w;
    out->height = h;
    out->channels = channels;
    out->data = pixels;
    return 0;
}

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int mvd_image_decode(const uint8_t *bytes, size_t n, const char *name, mvd_image *out) {
    memset(out, 0, sizeof *out);
    if (n == 0) return mv_error("%s: empty file, expected a JPEG or PNG image", name);
    if (n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        return decode_jpeg(bytes, n, name, out);
    if (n >= 8 && memcmp(bytes, png_magic, 8) == 0) return decode_png(bytes, n, name, out, NULL);
    return mv_error("%s: not a JPEG or PNG image (unknown magic bytes)", name);
}

int mvd_image_read(const char *path, mvd_image *out) {
    memset(out, 0, sizeof *out);
    uint8_t *bytes;
    size_t n;
    if (read_file_bytes(path, &bytes, &n)) return -1;
    int rc = mvd_image_decode(bytes, n, path, out);
    free(bytes);
    return rc;
}

int mvd_image_convert(const mvd_image *in, int channels, mvd_image *out) {
    if (!in->data || (in->channels != 1 && in->channels != 3))
        return mv_error("image: cannot convert an image with %d channels", in->channels);
    if (mvd_image_alloc(out, in->width, in->height, channels)) return -1;
    size_t np = (size_t)in->width * in->height;
    const uint8_t *s = in->data;
    uint8_t *d = out->data;
    if (in->channels == channels) {
        memcpy(d, s, np * channels);
    } else if (channels == 3) {
        for (size_t i = 0; i < np; i++) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[i];
    } else {
        /* PIL's ITU-R 601-2 luma in 16-bit fixed point, rounded */
        for (size_t i = 0; i < np; i++)
            d[i] = (uint8_t)((s[3 * i] * 19595u + s[3 * i + 1] * 38470u + s[3 * i + 2] * 7471u +
                              0x8000u) >> 16);
    }
    return 0;
}

int mvd_image_read_as(const char *path, int channels, mvd_image *out) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return mv_error("%s: %d channels requested, expected 1 or 3", path, channels);
    mvd_image raw;
    if (mvd_image_read(path, &raw)) return -1;
    if (raw.channels == channels) {
        *out = raw;
        return 0;
    }
    int rc = mvd_image_convert(&raw, channels, out);
    mvd_image_free(&raw);
    if (rc) return mv_error_prefix("%s", path);
    return 0;
}

int mvd_image_any_nonzero(const char *path, int *any) {
    *any = 0;
    uint8_t *bytes;
    size_t n;
    if (read_file_bytes(path, &bytes, &n)) return -1;
    int rc;
    if (n >= 8 && memcmp(bytes, png_magic, 8) == 0) {
        rc = decode_png(bytes, n, path, NULL, any);
    } else {
        mvd_image img;
        rc = mvd_image_decode(bytes, n, path, &img);
        if (rc == 0) {
            size_t total = (size_t)img.width * img.height * img.channels;
            for (size_t i = 0; i < total; i++)
                if (img.data[i]) { *any = 1; break; }
            mvd_image_free(&img);
        }
    }
    free(bytes);
    return rc;
}

/* ---- writers ------------------------------------------------------------- */

static int check_writable_image(const char *path, const mvd_image *img) {
    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        img->width > MVD_IMAGE_MAX_SIDE || img->height > MVD_IMAGE_MAX_SIDE)
        return mv_error("%s: cannot write an empty or oversized image", path);
    if (img->channels != 1 && img->channels != 3)
        return mv_error("%s: cannot write an image with %d channels (expected 1 or 3)", path,
                        img->channels);
    return 0;
}

static void tmp_name(char *buf, size_t n, const char *path) {
    snprintf(buf, n, "%s.tmp.%ld", path, (long)getpid());
}

/* Closes f, renames tmp to path; on any failure removes tmp and reports. */
static int finish_tmp_file(FILE *f, const char *tmp, const char *path) {
    return mvd_file_commit(f, tmp, path);
}

int mvd_image_check_header(const char *path) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char h[8];
    FILE *f = fopen(path, "rb");
    if (!f) return mv_error("%s: cannot read: %s", path, strerror(errno));
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n >= 3 && h[0] == 0xff && h[1] == 0xd8 && h[2] == 0xff) return 0;
    if (n == 8 && !memcmp(h, png, 8)) return 0;
    return mv_error("%s: not a JPEG or PNG image (%s)", path, n < 8 ? "truncated" : "unknown signature");
}

int mvd_image_write_png(const char *path, const mvd_image *img) {
    if (check_writable_image(path, img)) return -1;
    char tmp[4096];
    tmp_name(tmp, sizeof tmp, path);
    FILE *volatile f = fopen(tmp, "wb");
    if (!f) return mv_error("%s: cannot create file (%s)", tmp, strerror(errno));
    png_io_ctx io;
    memset(&io, 0, sizeof io);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        remove(tmp);
        return mv_error("%s: cannot create a PNG writer", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        remove(tmp);
        return mv_error("%s: PNG write failed (%s)", path, io.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * img->channels;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->data + stride * y);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return finish_tmp_file(f, tmp, path);
}

int mvd_image_write_jpeg(const char *path, const mvd_image *img, int quality) {
    if (check_writable_image(path, img)) return -1;
    if (quality < 1 || quality > 100)
        return mv_error("%s: JPEG quality %d out of range (1..100)", path, quality);
    char tmp[4096];
    tmp_name(tmp, sizeof tmp, path);
    FILE *volatile f = fopen(tmp, "wb");
    if (!f) return mv_error("%s: cannot create file (%s)", tmp, strerror(errno));
    struct jpeg_compress_struct cinfo;
    jpeg_err_ctx err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_err_exit;
    err.pub.emit_message = jpeg_err_emit;
    err.pub.output_message = jpeg_err_silent;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        remove(tmp);
        return mv_error("%s: JPEG write failed (%s)", path, err.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)img->width;
    cinfo.image_height = (JDIMENSION)img->height;
    cinfo.input_components = img->channels;
    cinfo.in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.dct_method = JDCT_ISLOW; /* the same bytes on every machine */
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)img->width * img->channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = img->data + stride * cinfo.next_scanline;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return finish_tmp_file(f, tmp, path);
}
