// Overloaded{lambdas...}: one visitor out of several lambdas, for std::visit over the closed
// Event and Command sets. Internal to the lifecycle library.
#pragma once

namespace vs::lifecycle {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out: clang before 17 does not deduce an aggregate's template arguments (C++20's CTAD for aggregates).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace vs::lifecycle
