// Umbrella header: the whole pipeline, revalue -> net -> reduce, and the account state for what-if.
#pragma once

#include "marginkernel/account.hpp"
#include "marginkernel/net.hpp"
#include "marginkernel/reduce.hpp"
#include "marginkernel/revalue.hpp"
#include "marginkernel/simd.hpp"
#include "marginkernel/types.hpp"
