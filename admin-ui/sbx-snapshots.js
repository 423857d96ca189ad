// SPDX-License-Identifier: MIT
// sbx-snapshots.js: the sandbox's snapshots (README "Snapshots": list,
// take one now, restore, fork into a new sandbox, delete) and where its
// /data stands in the object store (README "Persistent /data": the sync
// state, sync now).
import { api } from "./api.js";
import { h, errLine, attempt, table, bytes, when, confirmBox }
	from "./ui.js";

const SYNC_REFRESH_MS = 5000;
const enc = encodeURIComponent;

// A button that says busy words while f runs; f's error goes to line.
function busyButton(label, busy, line, f, attrs = {}) {
	const b = h("button", { type: "button", ...attrs }, label);
	b.addEventListener("click", async () => {
		b.disabled = true;
		b.textContent = busy;
		await attempt(line, f);
		b.textContent = label;
		b.disabled = false;
	});
	return b;
}

export function mount(el, name) {
	const snapErr = errLine("sbx-snap-error");
	const snapMsg = h("p", { id: "sbx-snap-status", role: "status",
		class: "muted" });
	const list = h("div", { id: "sbx-snap-list" });
	const syncErr = errLine("sbx-sync-error");
	const syncDl = h("dl", { id: "sbx-sync" });
	let gone = false;

	async function load() {
		const out = await attempt(snapErr, () =>
			api(`/api/v1/sandboxes/${enc(name)}/snapshots`));
		if (!out || gone) return;
		const rows = out.snapshots.map((s) => row(s));
		const heads = ["Taken", "Files", "Size", "Why", "Actions"];
		const tbl = table(heads, rows, { id: "sbx-snap-table",
			class: "stack" });
		list.replaceChildren(rows.length ? tbl :
			h("p", { class: "muted", id: "sbx-snap-empty" },
				"No snapshot of this sandbox yet."));
	}

	function row(s) {
		const err = h("p", { class: "bad", role: "alert" });
		const restore = busyButton("Restore", "Restoring…", err,
			async () => {
				if (!await confirmBox(el, `Restore ${name} to the ` +
					`snapshot of ${when(s.created)}? Its /workspace, ` +
					"/data and installed files are replaced; what " +
					"changed since is lost.", "Restore")) return;
				const r = await api(`/api/v1/snapshots/${enc(s.id)}/` +
					"restore", { method: "POST", body: { sandbox: name } });
				snapMsg.textContent = `Restored ${name} from ${s.id} ` +
					`(${r.files} files).`;
			}, { class: "restore", "aria-label": `Restore ${s.id}` });
		const del = busyButton("Delete", "Deleting…", err, async () => {
			if (!await confirmBox(el, `Delete the snapshot ${s.id}? ` +
				"This cannot be undone.", "Delete")) return;
			await api(`/api/v1/snapshots/${enc(s.id)}`,
				{ method: "DELETE" });
			snapMsg.textContent = `Deleted ${s.id}.`;
			await load();
		}, { class: "del", "aria-label": `Delete ${s.id}` });
		const forkName = h("input", { class: "fork-name", required: true,
			autocomplete: "off", spellcheck: "false", maxlength: 63,
			"aria-label": `Name of a new sandbox made from ${s.id}` });
		const fork = h("form", { class: "inline fork" }, forkName,
			h("button", { type: "submit" }, "Fork"));
		fork.addEventListener("submit", async (ev) => {
			ev.preventDefault();
			const n = forkName.value.trim();
			const r = await attempt(err, () => api(
				`/api/v1/snapshots/${enc(s.id)}/fork`,
				{ method: "POST", body: { names: [n] } }));
			if (!r || gone) return;
			fork.reset();
			snapMsg.replaceChildren(`Made the sandbox `, h("a",
				{ href: `#/sandboxes/${enc(n)}/files` }, n),
			` from ${s.id}.`);
		});
		return [h("span", { title: s.id, class: "snap-id",
			"data-id": s.id }, when(s.created)),
		/* Files and their bytes as kept; Size: the archive's. */
		`${s.files ?? ""} (${bytes(s.bytes ?? 0)})`, bytes(s.size),
		s.reason === "sleep" ? "on sleep" : s.by ? `by ${s.by}` :
			s.reason ?? "",
		h("div", {}, h("div", { class: "row wrap" }, restore, del),
			fork, err)];
	}

	async function sync(now) {
		const out = await attempt(syncErr, () =>
			api(`/api/v1/sandboxes/${enc(name)}/sync`,
				now ? { method: "POST", body: {} } : {}));
		if (!out || gone) return;
		if (out.state === "off") {
			syncDl.replaceChildren(h("dt", {}, "State"),
				h("dd", { id: "sbx-sync-state" }, "off: no object " +
					"store is set, so /data is not synced"));
			return;
		}
		const rows = [["State", out.state, out.state === "error" ?
			"bad" : out.state === "synced" ? "ok" : ""],
		["Store", out.store],
		["Last synced", out.last_ok_ms ? when(out.last_ok_ms / 1000) :
			"never"],
		["Changes waiting", out.pending_changes],
		["Files", `${out.files} (${bytes(out.bytes)})`],
		["Sent up", `${out.uploaded} (${bytes(out.uploaded_bytes)})`],
		["Come down", `${out.downloaded} ` +
			`(${bytes(out.downloaded_bytes)})`],
		["Conflicts", String(out.conflicts_total ?? 0)]];
		if (out.error) rows.push(["Error", out.error, "bad"]);
		syncDl.replaceChildren(...rows.flatMap(([t, v, c]) => [
			h("dt", {}, t), h("dd", { class: c || null, id: t ===
				"State" ? "sbx-sync-state" : null }, String(v ?? ""))]));
		for (const c of out.conflicts || [])
			syncDl.append(h("dt", {}, "Conflict"), h("dd", {},
				`${c.path}: ${c.kept}` + (c.copy ?
					` (the other is ${c.copy})` : "")));
	}

	const take = busyButton("Take a snapshot now", "Taking a snapshot…",
		snapErr, async () => {
			const m = await api(`/api/v1/sandboxes/${enc(name)}/` +
				"snapshots", { method: "POST", body: {} });
			snapMsg.textContent = `Took ${m.id}.`;
			await load();
		}, { id: "sbx-snap-take" });
	const syncNow = busyButton("Sync now", "Syncing…", syncErr,
		() => sync(true), { id: "sbx-sync-now" });
	el.replaceChildren(
		h("section", { "aria-labelledby": "sbx-snap-h" },
			h("h2", { id: "sbx-snap-h" }, "Snapshots"),
			h("p", { class: "muted" }, "A snapshot keeps /workspace, " +
				"/data and what was installed. Taking or restoring " +
				"one puts a running sandbox to sleep for a moment."),
			take, snapMsg, snapErr, list),
		h("section", { "aria-labelledby": "sbx-sync-h" },
			h("h2", { id: "sbx-sync-h" }, "/data in the object store"),
			syncDl, h("div", { class: "row" }, syncNow), syncErr));
	load();
	sync(false);
	const timer = setInterval(() => sync(false), SYNC_REFRESH_MS);
	return () => {
		gone = true;
		clearInterval(timer);
	};
}
