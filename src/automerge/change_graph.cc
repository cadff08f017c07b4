#include "automerge/change_graph.h"
