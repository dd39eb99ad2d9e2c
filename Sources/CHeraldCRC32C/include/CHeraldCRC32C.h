#ifndef CHERALDCRC32C_H
#define CHERALDCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC-32C instruction (SSE 4.2 on x86-64, the CRC extension on AArch64), else 0.
int herald_crc32c_hardware(void);

/// Continues the raw CRC-32C register `crc` (no pre- or post-inversion) over `count` bytes with the CPU's
/// instruction. Call only when `herald_crc32c_hardware()` is 1; otherwise it returns `crc` unchanged.
uint32_t herald_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count);

#endif
