/* image: 8-bit images in memory and their JPEG/PNG files. The Real-IAD
 * loader, the synthetic-data generator (data/synth.c), the anomaly-map
 * writers and the tests call it. Decoding is defensive: libjpeg/libpng
 * errors are caught through setjmp/longjmp error managers, so a corrupt,
 * truncated or non-image file gives -1 and an mv_error message naming the
 * file, never a crash or exit.
 *
 * Pixels are interleaved HWC, row-major, channels 1 (grey) or 3 (RGB). */
#ifndef MVEAD_DATA_IMAGE_H
#define MVEAD_DATA_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int width, height, channels;
    uint8_t *data; /* width * height * channels bytes, HWC */
} mvd_image;

/* Largest side accepted by the decoders (guards allocations from corrupt headers). */
#define MVD_IMAGE_MAX_SIDE 32768
/* Largest pixel count accepted (guards the decoders' whole-image buffers). */
#define MVD_IMAGE_MAX_PIXELS (1LL << 27)

/* Zeroed image. Returns -1 (+ mv_error) on bad sizes or out of memory. */
int mvd_image_alloc(mvd_image *img, int width, int height, int channels);
/* Frees the pixels and zeroes the struct; NULL or already-freed is fine. */
void mvd_image_free(mvd_image *img);

/* Reads a JPEG or PNG (chosen by magic bytes, not by extension).
 * Grey stays 1 channel; RGB, RGBA (alpha dropped), palette (expanded) give 3;
 * grey+alpha gives 1; 16-bit samples are scaled to 8 bits (rounded).
 * JPEG decoding uses libjpeg's defaults (ISLOW DCT, fancy upsampling), as PIL does. */
int mvd_image_read(const char *path, mvd_image *out);
/* As mvd_image_read, then converted to `channels` (1: PIL's "L" luma
 * (299 R + 587 G + 114 B)/1000 rounded; 3: grey replicated). */
int mvd_image_read_as(const char *path, int channels, mvd_image *out);
/* Decodes from memory; `name` is used in error messages. */
int mvd_image_decode(const uint8_t *bytes, size_t n, const char *name, mvd_image *out);

/* Writers. 1 or 3 channels; the bytes depend only on the pixels (and quality),
 * so writing the same image twice gives identical files. Written to
 * "<path>.tmp" and renamed, so a failed write never leaves a partial file. */
int mvd_image_write_png(const char *path, const mvd_image *img);
/* Cheap check before long work: path exists and starts like a JPEG or PNG
 * (its signature); no decoding. -1 with mv_error naming the file otherwise. */
int mvd_image_check_header(const char *path);
int mvd_image_write_jpeg(const char *path, const mvd_image *img, int quality);

/* Converts between 1 and 3 channels into a new image (out is allocated). */
int mvd_image_convert(const mvd_image *in, int channels, mvd_image *out);

/* Reads only as much of a mask file as needed to tell whether any pixel (any
 * channel) is nonzero: *any = 1 or 0. Stops at the first nonzero row of a PNG. */
int mvd_image_any_nonzero(const char *path, int *any);

#ifdef __cplusplus
}
#endif
#endif
