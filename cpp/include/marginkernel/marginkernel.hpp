// Umbrella header: every public header -- the pipeline (revalue -> net -> reduce), the account
// books for what-if, model files, explain and the SIMD choice. Each header also compiles alone
// (cpp/tests/CMakeLists.txt checks both).
#pragma once

#include "marginkernel/account.hpp"
#include "marginkernel/book.hpp"
#include "marginkernel/explain.hpp"
#include "marginkernel/model_file.hpp"
#include "marginkernel/net.hpp"
#include "marginkernel/reduce.hpp"
#include "marginkernel/revalue.hpp"
#include "marginkernel/simd.hpp"
#include "marginkernel/types.hpp"
