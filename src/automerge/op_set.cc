#include "automerge/op_set.h"
