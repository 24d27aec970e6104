/* fuzz_image: mvd_image_decode (JPEG/PNG from memory, by magic bytes) and the
 * channel conversions of a decoded image. */
#include "fuzz/fuzz_util.h"
#include "data/image.h"
#include "tensor/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mvd_image img;
    memset(&img, 0, sizeof img);
    if (mvd_image_decode(data, size, "fuzz-input", &img)) {
        if (!mv_error_last()[0]) abort();
        return 0;
    }
    if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) || !img.data) abort();
    /* touch every byte so ASan sees a short buffer */
    size_t n = (size_t)img.width * img.height * img.channels;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += img.data[i];
    mvd_image other;
    memset(&other, 0, sizeof other);
    if (mvd_image_convert(&img, img.channels == 1 ? 3 : 1, &other) == 0) mvd_image_free(&other);
    mvd_image_free(&img);
    return (int)(sum & 0);
}
