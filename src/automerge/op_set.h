// placeholder: the op set helper replaces this file
#pragma once
#include "automerge/doc_chunk.h"
namespace gm::automerge { class OpSet {}; }
