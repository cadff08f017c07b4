// placeholder: the change graph helper replaces this file
#pragma once
#include "automerge/doc_chunk.h"
namespace gm::automerge { class ChangeGraph {}; }
