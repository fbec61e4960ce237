/** Shell completions generated from the command tree itself, so they never go out of date. */
import type { Command } from "@commander-js/extra-typings";
import { CdError } from "../lib/errors.ts";

interface Node {
  path: string[];
  subcommands: string[];
  options: string[];
}

// deno-lint-ignore no-explicit-any -- walks commands of any generic shape
function walk(cmd: Command<any, any, any>, path: string[] = []): Node[] {
  const subs = cmd.commands as Command[];
  const options = cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x));
  const here: Node = { path, subcommands: subs.map((c) => c.name()), options };
  return [here, ...subs.flatMap((c) => walk(c, [...path, c.name()]))];
}

export function completionScript(program: Command, shell: string): string {
  const nodes = walk(program);
  const globalOpts = nodes[0].options;
  if (shell === "bash" || shell === "zsh") {
    const cases = nodes.map((n) =>
      `    "${n.path.join(" ")}") words="${[...n.subcommands, ...n.options, ...globalOpts].join(" ")}" ;;`
    ).join("\n");
    const body = `_comfydock() {
  local cur path="" w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i=1; i<COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ -z "$path" ]]; then path="$w"; else path="$path $w"; fi
  done
  local words=""
  case "$path" in
${cases}
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _comfydock comfydock
`;
    return shell === "zsh" ? `autoload -U +X bashcompinit && bashcompinit\n${body}` : body;
  }
  if (shell === "fish") {
    const lines = ["complete -c comfydock -f"];
    for (const n of nodes) {
      const cond = n.path.length === 0
        ? "__fish_use_subcommand"
        : `__fish_seen_subcommand_from ${n.path[n.path.length - 1]}`;
      for (const s of n.subcommands) lines.push(`complete -c comfydock -n '${cond}' -a ${s}`);
      for (const o of n.options) {
        const flag = o.startsWith("--") ? `-l ${o.slice(2)}` : `-s ${o.slice(1)}`;
        lines.push(`complete -c comfydock -n '${cond}' ${flag}`);
      }
    }
    return lines.join("\n") + "\n";
  }
  throw new CdError("BAD_SHELL", `no completions for shell '${shell}'`, { hint: "use bash, zsh or fish" });
}

export function registerCompletionsCommand(program: Command): void {
  program.command("completions").description("print a shell completion script")
    .argument("<shell>", "bash|zsh|fish")
    .addHelpText("after", "\nExample: comfydock completions bash > /etc/bash_completion.d/comfydock")
    .action(async (shell) => {
      const { printJson, ui } = await import("../lib/ui.ts");
      const script = completionScript(program, shell);
      if (ui.json) printJson({ shell, script });
      else console.log(script);
    });
}
