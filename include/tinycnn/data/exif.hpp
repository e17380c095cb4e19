#pragma once
// EXIF orientation for JPEG files (phone photos store pixels sideways plus a tag saying how to turn
// them). A small bounds-checked parser: it walks the JPEG marker segments up to the first scan, finds
// the APP1 "Exif" segment and reads tag 0x0112 from IFD0 only (so no IFD chain, and no loop, is ever
// followed). Anything malformed, truncated or out of range gives orientation 1 (as stored).
#include <cstddef>
#include <cstdint>

#include "image.hpp"

namespace tinycnn {
namespace data {

// Returns the EXIF orientation 1..8 of a JPEG in memory, or 1 when there is none or it is unreadable.
inline int jpeg_exif_orientation(const uint8_t* p, size_t n) {
  if (!p || n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 1;
  size_t pos = 2;
  for (int segments = 0; segments < 1024 && pos + 4 <= n; ++segments) {
    if (p[pos] != 0xFF) return 1;
    const uint8_t marker = p[pos + 1];
    if (marker == 0xFF) { ++pos; continue; }  // fill byte
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { pos += 2; continue; }
    if (marker == 0xDA || marker == 0xD9) return 1;  // start of scan / end: no EXIF before the image data
    const size_t len = (size_t(p[pos + 2]) << 8) | p[pos + 3];
    if (len < 2 || pos + 2 + len > n) return 1;
    const uint8_t* seg = p + pos + 4;
    const size_t seg_len = len - 2;
    if (marker == 0xE1 && seg_len >= 14 && seg[0] == 'E' && seg[1] == 'x' && seg[2] == 'i' && seg[3] == 'f' &&
        seg[4] == 0 && seg[5] == 0) {
      const uint8_t* t = seg + 6;
      const size_t tn = seg_len - 6;
      bool le;
      if (t[0] == 'I' && t[1] == 'I') le = true;
      else if (t[0] == 'M' && t[1] == 'M') le = false;
      else return 1;
      auto u16 = [&](size_t o) -> uint32_t {
        return le ? uint32_t(t[o]) | (uint32_t(t[o + 1]) << 8) : (uint32_t(t[o]) << 8) | uint32_t(t[o + 1]);
      };
      auto u32 = [&](size_t o) -> uint32_t {
        return le ? u16(o) | (u16(o + 2) << 16) : (u16(o) << 16) | u16(o + 2);
      };
      if (u16(2) != 42) return 1;
      const size_t ifd = u32(4);
      if (ifd < 8 || ifd > tn || tn - ifd < 2) return 1;
      const size_t count = u16(ifd);
      if (count > (tn - ifd - 2) / 12) return 1;  // entries must lie inside the segment
      for (size_t i = 0; i < count; ++i) {
        const size_t e = ifd + 2 + 12 * i;
        if (u16(e) != 0x0112) continue;
        const uint32_t type = u16(e + 2);
        if (type != 3 || u32(e + 4) < 1) return 1;  // SHORT, at least one value (stored inline)
        const uint32_t v = u16(e + 8);
        return (v >= 1 && v <= 8) ? static_cast<int>(v) : 1;
      }
      return 1;
    }
    pos += 2 + len;
  }
  return 1;
}

// Turns an image stored with EXIF orientation `o` upright (o = 1 or out of range: unchanged copy).
//   2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose,
//   6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
inline Image apply_exif_orientation(const Image& in, int o) {
  if (o < 2 || o > 8) return in;
  const int W = in.width, H = in.height, C = in.channels;
  const bool swap = o >= 5;
  Image out(swap ? H : W, swap ? W : H, C);
  for (int y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = W - 1 - x; sy = y; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sx = x; sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        case 8: sx = W - 1 - y; sy = x; break;
        default: break;
      }
      const uint8_t* src = in.row(sy) + static_cast<size_t>(sx) * static_cast<size_t>(C);
      for (int c = 0; c < C; ++c) dst[static_cast<size_t>(x) * static_cast<size_t>(C) + static_cast<size_t>(c)] = src[c];
    }
  }
  return out;
}

}  // namespace data
}  // namespace tinycnn
