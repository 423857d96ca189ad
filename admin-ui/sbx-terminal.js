// SPDX-License-Identifier: MIT
// sbx-terminal.js: the sandbox's terminal (xterm.js over the terminal
// WebSocket). Placeholder until xterm.js is vendored.
export function mount(el) {
	const p = document.createElement("p");
	p.textContent = "The terminal is not built yet.";
	el.replaceChildren(p);
	return () => {};
}
