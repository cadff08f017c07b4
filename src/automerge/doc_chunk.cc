#include "automerge/doc_chunk.h"
