// Umbrella header: the whole pipeline, revalue -> net -> reduce.
#pragma once

#include "marginkernel/net.hpp"
#include "marginkernel/reduce.hpp"
#include "marginkernel/revalue.hpp"
#include "marginkernel/simd.hpp"
#include "marginkernel/types.hpp"
