/* h5setattr: test helper for tests/corrupt_test.sh. Rewrites an existing
 * integer attribute of an HDF5 file's root group in place:
 *     h5setattr FILE NAME VALUE
 * (e.g. mvead_format 99 to make a "future version" file). With checksummed
 * metadata (the newest HDF5 file format) a byte patch can no longer do this.
 * Exit 0 on success, 1 with a message otherwise. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: h5setattr FILE NAME VALUE\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    long long v = strtoll(argv[3], NULL, 10);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0) { fprintf(stderr, "h5setattr: %s: cannot open\n", argv[1]); return 1; }
    hid_t a = H5Aopen(f, argv[2], H5P_DEFAULT);
    if (a < 0) { fprintf(stderr, "h5setattr: %s: no attribute %s\n", argv[1], argv[2]); H5Fclose(f); return 1; }
    int64_t x = (int64_t)v;
    herr_t e = H5Awrite(a, H5T_NATIVE_INT64, &x);
    H5Aclose(a);
    if (H5Fclose(f) < 0 || e < 0) { fprintf(stderr, "h5setattr: %s: write failed\n", argv[1]); return 1; }
    return 0;
}
