// Default sanitizer options of the test binary in a KERASCPP_SANITIZE build.
//
// LeakSanitizer (GCC 12, glibc 2.36) crashes reading the dynamic TLS of dlopen'ed libraries
// ("Tracer caught signal 11") once OpenMP threads exist; use_tls=0 skips that scan, and the
// suppression file covers the one thread-local allocation it then misses (dlerror's buffer).
extern "C" __attribute__((visibility("default"), used)) const char* __lsan_default_options() {
  return "use_tls=0:suppressions=" KERASCPP_LSAN_SUPPRESSIONS;
}
extern "C" __attribute__((visibility("default"), used)) const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}
