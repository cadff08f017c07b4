#include "automerge/sync.h"
