#pragma once
/// Symbols are hidden by default; KERASCPP_API exports the public ones from libkerascpp.so.
#if defined(_WIN32)
#define KERASCPP_API __declspec(dllexport)
#else
#define KERASCPP_API __attribute__((visibility("default")))
#endif
