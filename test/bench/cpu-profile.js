// Preload for `npm run bench -- --profile dir`: node refuses --cpu-prof in
// NODE_OPTIONS, so the bench sets NODE_OPTIONS="--require <this file>" and
// PULUMI_NETNS_BENCH_PROFILE_DIR, and every node process the CLI starts (the
// language host, the program's cmd/run, the provider host) profiles itself
// with the inspector and writes <role>-<pid>.cpuprofile on exit, SIGINT or
// SIGTERM (the CLI interrupts plugins before it kills them).

const dir = process.env.PULUMI_NETNS_BENCH_PROFILE_DIR;
if (dir) {
  const fs = require("node:fs");
  const inspector = require("node:inspector");
  const path = require("node:path");
  const args = process.argv.join(" ");
  const role = args.includes("dynamic-provider")
    ? "provider"
    : args.includes("cmd/run")
      ? "program"
      : args.includes("language-host")
        ? "langhost"
        : "node";
  const session = new inspector.Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    // The in-process session answers synchronously, so this works in an exit handler too.
    session.post("Profiler.stop", (err, res) => {
      if (err) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${role}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  };
  process.on("exit", write);
  for (const signal of ["SIGINT", "SIGTERM"])
    process.on(signal, () => {
      write();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
}
