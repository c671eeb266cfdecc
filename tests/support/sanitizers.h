#pragma once
// Whether this build runs under AddressSanitizer (GCC says so with __SANITIZE_ADDRESS__, clang with
// __has_feature): its allocator replaces glibc's, and its stage looks for memory errors, so a test
// may skip what only the plain build can show or what would only cost time there.

namespace physio::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

}  // namespace physio::testing
