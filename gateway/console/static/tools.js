// "Your tools", for every signed-in caller: the tools the MCP front lists to you (your
// permissions, the plugins' and the hooks' say included) and why each is allowed; and
// any server/tool explained as tools/call will decide it.
import { h, replace } from "./dom.js";
import { explainer, mayCallTable, selfAsked } from "./decisions.js";
import { api } from "./session.js";

export const toolsView = {
  id: "tools",
  title: "Your tools",
  admin: false,
  async mount(container, { signal }) {
    const list = h("section", { "aria-labelledby": "tools-title" });
    const load = async () => {
      const { tools = [] } = await api("/console/api/tools", { signal });
      replace(list,
        h("h3", { id: "tools-title" }, "What may you do?"),
        h("p", { class: "hint" }, "What an MCP client signed in as you sees on /mcp, and the rule that allows each tool."),
        mayCallTable("you", tools.map((tool) => [tool.server, tool.tool, tool.decision])),
        h("button", { type: "button", class: "secondary", onclick: () => load() }, "Read again"));
    };
    replace(container, h("h2", {}, "Your tools"), list, explainer(selfAsked));
    await load();
  },
};
