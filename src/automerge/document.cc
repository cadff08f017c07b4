#include "automerge/document.h"
