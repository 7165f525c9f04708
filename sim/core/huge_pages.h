#pragma once
// Large pages for the few arrays of many millions of elements (a 2,048-GPU
// step's task graph holds about 20 million tasks): on Linux with transparent
// huge pages in their default "madvise" mode, memory that asks for them is
// mapped 2 MiB at a time instead of 4 KiB, so first touching it takes about
// 500 times fewer page faults. Page faults were a fifth of `moesim bench
// step`'s time (perf, on a virtual machine where each one traps). Elsewhere,
// or with THP off, these calls change nothing.

#include <cstddef>

namespace moesim {

// Advises the kernel to back the whole 2 MiB pages inside [data, data +
// bytes) with huge pages. Best effort: errors are ignored.
void advise_huge_pages(const void* data, size_t bytes);

// Reserves room for `count` elements of `vec` and advises huge pages for it,
// before anything touches that memory (call it on an empty vector: memory an
// earlier use touched already has its small pages).
template <class Vector>
void reserve_huge(Vector& vec, size_t count) {
  vec.reserve(count);
  advise_huge_pages(vec.data(), vec.capacity() * sizeof(typename Vector::value_type));
}

}  // namespace moesim
