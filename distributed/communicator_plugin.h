#pragma once
// The communicator plugin ABI: each plugin exports one C entry point that creates its communicator.
#include <cstddef>
#include <cstdint>

#include "../core/export.h"
#include "communicator.h"

/// Bumped whenever Communicator or this entry point changes; the loader refuses mismatches.
#define KERASCPP_COMM_ABI_VERSION 2u
/// `keras::distribute::Communicator* kerascpp_communicator_create(uint32_t abi, const CommunicatorOptions*,
///  Communicator* bootstrap, char* why, size_t why_size)`: null with `why` filled when it cannot run.
#define KERASCPP_COMM_ENTRY_POINT "kerascpp_communicator_create"

extern "C" {
typedef uint32_t (*KerascppCommAbiFn)();
typedef keras::distribute::Communicator* (*KerascppCommCreateFn)(const keras::distribute::CommunicatorOptions* options,
                                                                 keras::distribute::Communicator* bootstrap, char* why,
                                                                 size_t why_size);
}
#define KERASCPP_COMM_ABI_ENTRY_POINT "kerascpp_communicator_abi"
