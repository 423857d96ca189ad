// SPDX-License-Identifier: MIT
// system.js: the gateway itself: restart pincerd (what only a restart
// applies: listen, channels, sandbox settings) and the backups of its
// database (list, back up now). Shown on the Settings page; the restart
// button also where a page says a restart is waiting (Channels).
import { api } from "./api.js";
import { h, errLine, attempt, table, bytes, when, confirmBox } from "./ui.js";

const READY_WAIT_MS = 60000;

// Wait for the new pincerd: /readyz answers 200 again (the old one
// answers 503 while it drains, then nothing while it starts).
async function readyAgain() {
	const end = Date.now() + READY_WAIT_MS;
	await new Promise((r) => setTimeout(r, 500));
	while (Date.now() < end) {
		try {
			const r = await fetch("/readyz", { cache: "no-store" });
			if (r.ok) return true;
		} catch { /* not listening yet */ }
		await new Promise((r) => setTimeout(r, 500));
	}
	return false;
}

// A "Restart pincerd" button with its own status and error lines; after
// the restart the page is loaded again (the session survives it).
export function restartButton(id = "restart") {
	const said = h("p", { role: "status", id: id + "-status" });
	const err = errLine(id + "-error");
	const wrap = h("div", { class: "restart" });
	const b = h("button", { type: "button", id, onclick: async () => {
		if (!await confirmBox(wrap, "Restart pincerd now? Requests in " +
		    "flight finish first; running turns are run again after " +
		    "it, sandboxes are stopped and woken when next used.",
		    "Restart"))
			return;
		b.disabled = true;
		said.textContent = "";
		const out = await attempt(err, () => api("/api/v1/system/restart",
			{ method: "POST", body: {} }));
		if (out === undefined) {
			b.disabled = false;
			return;
		}
		said.textContent = "Restarting… this page comes back when " +
			"pincerd is ready.";
		if (await readyAgain()) {
			location.reload();
			return;
		}
		b.disabled = false;
		err.textContent = "pincerd did not come back within a minute; " +
			"look at its log (journalctl -u pincerd, or the " +
			"terminal it runs in).";
	} }, "Restart pincerd");
	wrap.append(b, said, err);
	return wrap;
}

// The database's backups in the object store, and Back up now.
function backups() {
	const list = h("div", { id: "backups-list" });
	const err = errLine("backups-error");
	const said = h("p", { role: "status", id: "backups-status",
		class: "ok" });
	const load = async () => {
		const r = await attempt(err, () => api("/api/v1/system/backups"));
		if (!r) {
			list.replaceChildren();
			return;
		}
		list.replaceChildren(r.backups.length === 0 ?
			h("p", { class: "muted" }, "No backup yet.") :
			table(["Backup", "Made", "Size", "Schema"],
				r.backups.map((b) => [h("code", {}, b.id),
					when(b.created), bytes(b.size),
					b.schema_version ?? ""]),
				{ id: "backups-table" }),
			r.incomplete ? h("p", { class: "muted" },
				`${r.incomplete} incomplete upload(s) ` +
				"are not listed.") : "");
	};
	const now = h("button", { type: "button", id: "backup-now",
		onclick: async () => {
			said.textContent = "";
			now.disabled = true;
			const b = await attempt(err, () => api(
				"/api/v1/system/backups",
				{ method: "POST", body: {} }));
			now.disabled = false;
			if (b === undefined) return;
			said.textContent = `Backed up as ${b.id} ` +
				`(${bytes(b.size)}, ${b.ms} ms).`;
			load();
		} }, "Back up now");
	load();
	return h("section", { id: "backups", "aria-labelledby": "backups-h" },
		h("h2", { id: "backups-h" }, "Backups"),
		h("p", { class: "muted" }, "Copies of pincer.db (users, " +
			"conversations, usage, secrets sealed) in the object " +
			"store; restore one with pincer backup restore."),
		now, said, err, list);
}

export function systemSection() {
	return h("section", { id: "system", "aria-labelledby": "system-h" },
		h("h2", { id: "system-h" }, "pincerd"),
		h("p", { class: "muted" }, "Options marked “needs a restart” " +
			"and channels added since the start take effect when " +
			"pincerd restarts."),
		restartButton(), backups());
}
