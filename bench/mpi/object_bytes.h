// Every benchmark object's bytes are a function of its id, so the rank that
// fetches it can check every byte without the holder sending a reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plasma/common/object_id.h"

namespace plasma::mpibench {

void FillObject(const ObjectId& id, uint8_t* data, size_t size);
// Offset of the first wrong byte, or size when every byte is right.
size_t FirstWrongByte(const ObjectId& id, const uint8_t* data, size_t size);

}  // namespace plasma::mpibench
