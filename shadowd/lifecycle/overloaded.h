// Overloaded{lambdas...}: one visitor out of several lambdas, for std::visit over the closed
// Event and Command sets. Internal to the lifecycle library.
#pragma once

namespace vs::lifecycle {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

}  // namespace vs::lifecycle
