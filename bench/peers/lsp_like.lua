-- LSP-like messages for the benchmarks: what a language server and its
-- client send each other, with nesting, escapes, UTF-8 and "id" keys inside
-- results. Every peer builds the same ones (vscode_server.js and floor.c
-- by the same rules), so that a result's length is known in advance:
-- object members may come in any order, but no string holds a character
-- that two encoders escape differently (no "/", no control character
-- but \n and \t).
local M = {}

--- A completion list of n items (about 250 bytes each).
function M.completion(n)
  local items = {}
  for i = 1, n do
    items[i] = {
      label = "item_" .. i .. "_\u{e9}\u{2713}",
      kind = i % 25 + 1,
      detail = 'fn(x: "int") -> ' .. i,
      documentation = 'Line one\nline "two"\ttabbed \u{4e2d}\u{6587}',
      sortText = ("%05d"):format(i),
      insertText = "item_" .. i .. "(${1:x})",
      data = { id = i, position = { line = i, character = i % 80 } },
    }
  end
  return { isIncomplete = false, items = items }
end

--- publishDiagnostics-like params: n diagnostics (about 260 bytes each).
function M.diagnostics(n)
  local list = {}
  for i = 1, n do
    list[i] = {
      range = { start = { line = i, character = 4 }, ["end"] = { line = i, character = 17 + i % 9 } },
      severity = i % 4 + 1,
      code = "E" .. (1000 + i),
      source = "clangd",
      message = 'use of undeclared identifier "v' .. i .. '"; did you mean \u{2018}w' .. i
        .. '\u{2019}?\n  note: declared here',
      relatedInformation = { { location = { uri = "file:src" .. i .. ".c", id = i },
                               message = "declared \u{e0} c\u{f4}t\u{e9}" } },
    }
  end
  return { uri = "file:main.c", version = 7, diagnostics = list }
end

--- didOpen-like params: a source text of about `bytes` bytes.
function M.did_open(bytes)
  local lines, size, i = {}, 0, 0
  while size < bytes do
    i = i + 1
    local line = ('\tprintf("line %d: %%s \\"\u{e9}t\u{e9}\\"\\n", name); // \u{2713} done'):format(i)
    lines[i] = line
    size = size + #line + 1
  end
  return { textDocument = { uri = "file:main.c", languageId = "c", version = 42,
                            text = table.concat(lines, "\n") } }
end

return M
