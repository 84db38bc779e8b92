// The lab's clickable space-time diagram (txlib.viz.clickable): an anywidget front end.
//
// It draws nothing of the diagram itself. Once loaded, it finds the lab it sits in
// (the closest `.txlab`), makes the marks the kernel lists in `targets` clickable and
// focusable (messages in flight, node headers), and on a click or Enter/Space opens a
// small menu next to the mark: drop / duplicate / delay a message, crash / restart a
// node. The choice goes to the kernel as {action, step, message | node}; the kernel
// checks it, adds the fault and redraws. Where this front end cannot load, nothing here
// runs: the diagram stays a picture and the fault panel does the same job.

const CSS = `
.txlab-diagram{position:relative}
.txlab-diagram [data-click],.txlab-diagram .hit-dot{cursor:pointer}
.txlab-diagram [data-click]:focus{outline:none}
.txlab-diagram [data-click]:focus-visible .hit,.txlab-diagram [data-click]:hover .hit{
  stroke:#0072B2;stroke-opacity:.28}
.txlab-diagram g.head[data-click]:hover rect,.txlab-diagram g.head[data-click]:focus-visible rect{
  stroke:#0072B2;stroke-width:2.5;stroke-opacity:1}
.txlab-pick{position:absolute;z-index:5;display:flex;flex-wrap:wrap;gap:4px;align-items:center;
  max-width:340px;padding:5px 6px;border-radius:6px;font-size:12px;
  background:var(--jp-layout-color1,#fff);color:var(--jp-ui-font-color1,#222);
  border:1px solid var(--jp-border-color1,#999);box-shadow:0 2px 8px rgba(0,0,0,.25)}
.txlab-pick span{margin-right:2px}
.txlab-pick button{font:inherit;padding:2px 8px;cursor:pointer;border-radius:3px;
  border:1px solid var(--jp-border-color1,#999);background:var(--jp-layout-color2,#eee);
  color:inherit}
.txlab-pick button:focus-visible{outline:2px solid #0072B2;outline-offset:1px}
.txlab-clickhint{font-size:12px;opacity:.85;margin:0 0 2px 2px}
`;

const MESSAGE_CHOICES = [
  ["drop", "drop it"],
  ["duplicate", "deliver it twice"],
  ["delay", "delay it 100 ms"],
];

function escapeName(name) {
  return (globalThis.CSS && CSS.escape) ? globalThis.CSS.escape(name)
    : String(name).replace(/["\\]/g, "\\$&");
}

function render({ model, el }) {
  let root = null;
  let diagram = null;
  let observer = null;
  let menu = null;
  let frame = 0;
  let tries = 0;

  el.classList.add("txlab-clickhint");
  const style = document.createElement("style");
  style.textContent = CSS;
  el.appendChild(style);
  const hint = document.createElement("div");
  el.appendChild(hint);

  function targets() {
    return model.get("targets") || {};
  }

  function svg() {
    return diagram ? diagram.querySelector("svg.txst") : null;
  }

  function showHint() {
    const t = targets();
    hint.textContent = t.editable
      ? "Click a message in flight (a dot on its way) to drop, duplicate or delay it, " +
        "or a node's name to crash or restart it, right after this step."
      : "";
  }

  // Make the marks the kernel lists clickable; undo it on marks it no longer lists.
  // (Not watched while it works: its own changes must not call it again.)
  function decorate() {
    if (observer) observer.disconnect();
    try {
      markTargets();
    } finally {
      if (observer) observer.observe(diagram, { childList: true, subtree: true });
    }
  }

  function markTargets() {
    const picture = svg();
    if (!picture) return;
    for (const old of picture.querySelectorAll("[data-click]")) {
      for (const a of ["data-click", "role", "tabindex", "aria-label", "aria-haspopup"]) {
        old.removeAttribute(a);
      }
      for (const hit of old.querySelectorAll(".hit")) hit.remove();
    }
    for (const dot of picture.querySelectorAll(".hit-dot")) dot.remove();
    const t = targets();
    if (!t.editable) return;
    // Its parts are controls now, which the parts of an image cannot be.
    picture.setAttribute("role", "group");
    const clickable = (g, kind, label) => {
      g.setAttribute("data-click", kind);
      g.setAttribute("role", "button");
      g.setAttribute("tabindex", "0");
      g.setAttribute("aria-haspopup", "true");
      g.setAttribute("aria-label", label);
    };
    for (const m of t.messages || []) {
      const g = picture.querySelector(`g.msg.inflight[data-msg="${m.id}"][data-copy="0"]`);
      if (!g) continue;
      clickable(g, "message", `${m.label}: drop, duplicate or delay it`);
      // A wide transparent stroke along the arrow, so a thin line is easy to hit.
      for (const line of g.querySelectorAll("line")) {
        const hit = line.cloneNode(false);
        hit.removeAttribute("style");
        hit.removeAttribute("stroke-dasharray");
        hit.setAttribute("class", "hit");
        hit.setAttribute("stroke", "#0072B2");
        hit.setAttribute("stroke-opacity", "0");
        hit.setAttribute("stroke-width", "14");
        hit.setAttribute("stroke-linecap", "round");
        hit.setAttribute("pointer-events", "stroke");
        g.insertBefore(hit, g.firstChild);
      }
      // Over everything, a transparent disc on the message's dot (where it is now):
      // a label drawn over the dot does not stop a click on it.
      const dot = g.querySelector("circle");
      if (dot) {
        const disc = document.createElementNS("http://www.w3.org/2000/svg", "circle");
        disc.setAttribute("class", "hit-dot");
        disc.setAttribute("data-msg", String(m.id));
        disc.setAttribute("cx", dot.getAttribute("cx"));
        disc.setAttribute("cy", dot.getAttribute("cy"));
        disc.setAttribute("r", "9");
        disc.setAttribute("fill", "transparent");
        disc.setAttribute("pointer-events", "all");
        picture.appendChild(disc);
      }
    }
    for (const n of t.nodes || []) {
      const g = picture.querySelector(`g.head[data-node="${escapeName(n.name)}"]`);
      if (!g) continue;
      clickable(g, n.up ? "crash" : "recover",
        `${n.name}: ${n.up ? "crash it" : "restart it"} right after step ${t.step}`);
    }
  }

  function closeMenu(refocus) {
    if (!menu) return;
    const back = menu.txlabMark;
    menu.remove();
    menu = null;
    if (refocus && back && back.isConnected) back.focus();
  }

  function send(content) {
    closeMenu(false);
    model.send({ step: targets().step, ...content });
  }

  function openMenu(mark, x, y) {
    closeMenu(false);
    const t = targets();
    const kind = mark.getAttribute("data-click");
    menu = document.createElement("div");
    menu.className = "txlab-pick";
    menu.setAttribute("role", "group");
    menu.txlabMark = mark;
    const title = document.createElement("span");
    const add = (text, content) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.addEventListener("click", (e) => { e.stopPropagation(); send(content); });
      menu.appendChild(b);
      return b;
    };
    if (kind === "message") {
      const id = Number(mark.getAttribute("data-msg"));
      const type = mark.getAttribute("data-type");
      const route = `${mark.getAttribute("data-src")} → ${mark.getAttribute("data-dst")}`;
      title.textContent = `${type} ${route}:`;
      menu.setAttribute("aria-label", `fault on message ${id}, ${type} ${route}`);
      menu.appendChild(title);
      for (const [action, text] of MESSAGE_CHOICES) add(text, { action, message: id });
    } else {
      const node = mark.getAttribute("data-node");
      title.textContent = `${node}:`;
      menu.setAttribute("aria-label", `fault on node ${node}`);
      menu.appendChild(title);
      add(kind === "crash" ? `crash it after step ${t.step}`
        : `restart it after step ${t.step}`, { action: kind, node });
    }
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", "close this menu");
    close.addEventListener("click", (e) => { e.stopPropagation(); closeMenu(true); });
    menu.appendChild(close);
    menu.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); closeMenu(true); }
    });
    menu.addEventListener("click", (e) => e.stopPropagation());
    diagram.appendChild(menu);
    // Beside the mark, kept inside the diagram's box.
    const box = diagram.getBoundingClientRect();
    const left = Math.max(0, Math.min(x - box.left + 8, box.width - menu.offsetWidth - 4));
    const top = Math.max(0, Math.min(y - box.top + 8, box.height - menu.offsetHeight - 4));
    menu.style.left = `${left}px`;
    menu.style.top = `${top}px`;
    menu.querySelector("button").focus();
  }

  // The mark a click means: a clickable mark, the disc on a message's dot, or the label
  // of a clickable message.
  function markOf(target) {
    if (!target.closest) return null;
    const mark = target.closest("[data-click]");
    if (mark) return mark;
    const named = target.closest(".hit-dot, g.msg-label[data-msg]");
    const picture = svg();
    if (!named || !picture) return null;
    const id = named.getAttribute("data-msg");
    return picture.querySelector(`g.msg[data-click][data-msg="${id}"][data-copy="0"]`);
  }

  function onClick(event) {
    const mark = markOf(event.target);
    if (!mark || !diagram.contains(mark)) { closeMenu(false); return; }
    event.preventDefault();
    openMenu(mark, event.clientX, event.clientY);
  }

  function onKey(event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    const mark = event.target.closest ? event.target.closest("[data-click]") : null;
    if (!mark) return;
    event.preventDefault();
    const r = mark.getBoundingClientRect();
    openMenu(mark, r.left + r.width / 2, r.top + r.height / 2);
  }

  function onTargets() {
    closeMenu(false);
    showHint();
    decorate();
  }

  // The lab's box holds this view; it may not be in the page yet when this runs.
  function attach() {
    frame = 0;
    root = el.closest(".txlab");
    diagram = root ? root.querySelector(".txlab-diagram") : null;
    if (!diagram) {
      if (tries++ < 600) frame = requestAnimationFrame(attach);
      return;
    }
    diagram.addEventListener("click", onClick);
    diagram.addEventListener("keydown", onKey);
    observer = new MutationObserver(decorate);  // the kernel redrew the picture
    showHint();
    decorate();
  }

  model.on("change:targets", onTargets);
  attach();
  return () => {
    if (frame) cancelAnimationFrame(frame);
    model.off("change:targets", onTargets);
    closeMenu(false);
    if (observer) observer.disconnect();
    if (diagram) {
      diagram.removeEventListener("click", onClick);
      diagram.removeEventListener("keydown", onKey);
    }
  };
}

export default { render };
