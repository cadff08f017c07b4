// placeholder: the sync helper replaces this file
#pragma once
#include "automerge/change_graph.h"
namespace gm::automerge { struct SyncState {}; }
