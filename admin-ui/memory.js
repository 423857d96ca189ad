// SPDX-License-Identifier: MIT
export function render() {}
