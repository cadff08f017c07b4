#pragma once
// Implemented in a later commit.
#include "automerge/change.h"
