// Copies files tsc does not emit (Lua scripts, static UI files) next to the compiled code.
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
for (const dir of ['src/fold/lua', 'src/ui/static']) {
  const from = path.join(root, dir);
  if (fs.existsSync(from)) fs.cpSync(from, path.join(root, 'dist', dir), { recursive: true });
}
