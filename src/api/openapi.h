// The JSON API's description (OpenAPI 3.1), served at GET /api/v1/openapi.json. A test
// (routes_test.cc) checks that its paths and methods are exactly the routes added.
#pragma once

#include <nlohmann/json.hpp>

namespace gm::api {

const nlohmann::json& openapi_description();

}  // namespace gm::api
