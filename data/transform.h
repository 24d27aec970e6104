/* transform: resizing, cropping and normalisation of images into the
 * backbone's input (float CHW, ImageNet-normalised) and of defect masks into
 * binary uint8 maps. The loader (data/loader.c), the feature cache, the
 * synthetic generator and the anomaly-map writers call it.
 *
 * Resampling conventions (per axis; everything is separable):
 *  - MVD_RESIZE_NEAREST: PyTorch 'nearest': src = min(floor(dst * (in/out)), in - 1),
 *    the scale computed in float as PyTorch does. Used for masks.
 *  - MVD_RESIZE_BILINEAR / MVD_RESIZE_BICUBIC, upsampling (or same size):
 *    PyTorch F.interpolate(align_corners=False, antialias=False): half-pixel
 *    centres src = (dst + 0.5) * in/out - 0.5, indices clamped at the borders
 *    (bilinear clamps src at 0 first), bicubic A = -0.75.
 *  - shrinking with antialias (MVD_AA_SHRINK, the default): the PIL /
 *    torch antialias=True convolution: the filter (triangle, or the
 *    a = -0.5 cubic as PIL uses) is stretched by the scale in/out, taps outside
 *    the image are dropped and the weights renormalised.
 *  - MVD_AA_PIL uses that PIL convolution for upsampling too (PIL's
 *    Image.resize); MVD_AA_NONE never antialiases.
 * uint8 images resized with PIL's filter on every resized axis (the default
 * shrink, or MVD_AA_PIL) use PIL's own 8-bit arithmetic (22-bit fixed-point
 * weights, horizontal pass then vertical, each rounded and clipped to uint8):
 * bit-exact with Pillow's Image.resize, so preprocessing equals torchvision's
 * PIL pipeline. Other uint8 cases compute both passes in double and round and
 * clamp once; float images are always computed in double. */
#ifndef MVEAD_DATA_TRANSFORM_H
#define MVEAD_DATA_TRANSFORM_H
#include <stdint.h>
#include "data/image.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MVD_RESIZE_NEAREST = 0, MVD_RESIZE_BILINEAR = 1, MVD_RESIZE_BICUBIC = 2 } mvd_resize_mode;
typedef enum { MVD_AA_SHRINK = 0, MVD_AA_NONE = 1, MVD_AA_PIL = 2 } mvd_antialias;

/* ImageNet statistics used by the backbone input. */
extern const float mvd_imagenet_mean[3];
extern const float mvd_imagenet_std[3];

/* Resize interleaved HWC buffers: src [h, w, c] -> dst [oh, ow, c] (dst
 * preallocated, must not alias src). Returns -1 + mv_error on bad sizes. */
int mvd_resize_u8(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh,
                  mvd_resize_mode mode, mvd_antialias aa);
int mvd_resize_f32(const float *src, int w, int h, int c, float *dst, int ow, int oh,
                   mvd_resize_mode mode, mvd_antialias aa);
/* Image to a new image of ow x oh (out allocated). */
int mvd_image_resize(const mvd_image *in, int ow, int oh, mvd_resize_mode mode, mvd_antialias aa,
                     mvd_image *out);

/* torchvision CenterCrop: top = round((h - ch) / 2), left = round((w - cw) / 2)
 * (round half to even, as Python's round). Crop larger than the image is an error. */
int mvd_image_center_crop(const mvd_image *in, int cw, int ch, mvd_image *out);

/* uint8 HWC (1 or 3 channels; grey is replicated) -> float CHW [3, H, W] in
 * dst (caller buffer of 3*H*W floats): (u / 255 - mean[c]) / std[c] in float32,
 * the same operations as torchvision ToTensor + Normalize. */
int mvd_image_to_chw_normalized(const mvd_image *img, float *dst);

/* How a file becomes the backbone input. */
typedef struct {
    int height, width;       /* output size (default 224 x 224) */
    mvd_resize_mode mode;    /* default MVD_RESIZE_BILINEAR (torchvision Resize's default) */
    mvd_antialias antialias; /* default MVD_AA_SHRINK */
    int resize_short;        /* 0 (default): resize straight to height x width; > 0: resize
                                the shorter side to this (aspect kept, torchvision
                                Resize(int)), then centre-crop height x width */
} mvd_preprocess_opts;

void mvd_preprocess_opts_default(mvd_preprocess_opts *o);

/* Reads an image file (as RGB), resizes, normalises -> out [3, height, width]. */
int mvd_preprocess_file(const char *path, int height, int width, float *out);
int mvd_preprocess_file_opts(const char *path, const mvd_preprocess_opts *o, float *out);
/* Same from an image already in memory. */
int mvd_preprocess_image(const mvd_image *img, const mvd_preprocess_opts *o, float *out);

/* Reads a mask file (any format/channels), binarises at full resolution
 * (1 where any channel is nonzero), nearest-resizes to out [height, width].
 * path NULL: all zeros. *any_nonzero (may be NULL) is the label of the view:
 * 1 if the full-resolution mask has any nonzero pixel (before resizing, so
 * tiny defects that nearest resizing drops still count). With resize_short
 * > 0 in o, the mask goes through the same resize + centre crop as the image. */
int mvd_preprocess_mask(const char *path, int height, int width, uint8_t *out, int *any_nonzero);
int mvd_preprocess_mask_opts(const char *path, const mvd_preprocess_opts *o, uint8_t *out,
                             int *any_nonzero);

#ifdef __cplusplus
}
#endif
#endif
