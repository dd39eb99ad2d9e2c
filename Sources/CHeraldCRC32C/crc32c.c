// CRC-32C with the CPU's own instruction: eight bytes per instruction (three streams at once on x86-64),
// against one table lookup per byte in Swift (HeraldLog's CRC32C falls back to that when the CPU has no such instruction). Every log record is
// checksummed on the event loop that appends it, so this is on the publish path.
#include "CHeraldCRC32C.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int herald_crc32c_hardware(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

// One crc32 instruction takes three cycles before the next may use its result, and issues one per cycle:
// three streams over three blocks of the data run three times as fast as one, and are then joined by
// "shifting" the first two over the bytes that follow them (multiplying by x^(8n) modulo the polynomial,
// with tables made once for the two block sizes), as Mark Adler's crc32c.c does. A record of ~500 bytes
// goes through the short blocks; the dedup rebuild checks every record of the window this way.
enum { LONG = 8192, SHORT = 128 };
static uint32_t crc32c_long[4][256];
static uint32_t crc32c_short[4][256];

// Multiplies the 32×32 matrix `mat` (one word per column) by `vec` over GF(2).
static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

// The operator that appends `length` zero bytes to a raw CRC register; `length` a power of two.
static void crc32c_zeros_operator(uint32_t *even, size_t length) {
    uint32_t odd[32];
    odd[0] = 0x82F63B78;  // one zero bit: the reflected Castagnoli polynomial
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_matrix_square(even, odd);  // two zero bits
    gf2_matrix_square(odd, even);  // four zero bits
    // Each square doubles: the first below gives one zero byte, in `even`.
    do {
        gf2_matrix_square(even, odd);
        length >>= 1;
        if (length == 0) return;
        gf2_matrix_square(odd, even);
        length >>= 1;
    } while (length);
    for (int n = 0; n < 32; n++) even[n] = odd[n];
}

static void crc32c_zeros(uint32_t zeros[4][256], size_t length) {
    uint32_t op[32];
    crc32c_zeros_operator(op, length);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_matrix_times(op, n);
        zeros[1][n] = gf2_matrix_times(op, n << 8);
        zeros[2][n] = gf2_matrix_times(op, n << 16);
        zeros[3][n] = gf2_matrix_times(op, n << 24);
    }
}

__attribute__((constructor)) static void crc32c_make_tables(void) {
    crc32c_zeros(crc32c_long, LONG);
    crc32c_zeros(crc32c_short, SHORT);
}

static inline uint32_t crc32c_shift(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

static inline uint64_t load64(const unsigned char *at) {
    uint64_t word;
    memcpy(&word, at, 8);
    return word;
}

__attribute__((target("sse4.2"))) static const unsigned char *crc32c_three_blocks(uint64_t *crc,
                                                                                 const unsigned char *next,
                                                                                 size_t block,
                                                                                 uint32_t zeros[4][256]) {
    uint64_t crc0 = *crc, crc1 = 0, crc2 = 0;
    const unsigned char *end = next + block;
    do {
        crc0 = _mm_crc32_u64(crc0, load64(next));
        crc1 = _mm_crc32_u64(crc1, load64(next + block));
        crc2 = _mm_crc32_u64(crc2, load64(next + 2 * block));
        next += 8;
    } while (next < end);
    crc0 = crc32c_shift(zeros, (uint32_t)crc0) ^ crc1;
    crc0 = crc32c_shift(zeros, (uint32_t)crc0) ^ crc2;
    *crc = crc0;
    return next + 2 * block;
}

__attribute__((target("sse4.2"))) uint32_t herald_crc32c_update_hardware(uint32_t crc, const void *bytes,
                                                                         size_t count) {
    const unsigned char *next = bytes;
    uint64_t wide = crc;
    while (count >= 3 * LONG) {
        next = crc32c_three_blocks(&wide, next, LONG, crc32c_long);
        count -= 3 * LONG;
    }
    while (count >= 3 * SHORT) {
        next = crc32c_three_blocks(&wide, next, SHORT, crc32c_short);
        count -= 3 * SHORT;
    }
    while (count >= 8) {
        wide = _mm_crc32_u64(wide, load64(next));
        next += 8;
        count -= 8;
    }
    uint32_t narrow = (uint32_t)wide;
    while (count > 0) {
        narrow = _mm_crc32_u8(narrow, *next);
        next += 1;
        count -= 1;
    }
    return narrow;
}

#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>

#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif

int herald_crc32c_hardware(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0; }

__attribute__((target("crc"))) uint32_t herald_crc32c_update_hardware(uint32_t crc, const void *bytes,
                                                                       size_t count) {
    const unsigned char *next = bytes;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, next, 8);
        crc = __crc32cd(crc, word);
        next += 8;
        count -= 8;
    }
    while (count > 0) {
        crc = __crc32cb(crc, *next);
        next += 1;
        count -= 1;
    }
    return crc;
}

#else

int herald_crc32c_hardware(void) { return 0; }

uint32_t herald_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return crc;
}

#endif
