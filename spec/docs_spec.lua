-- The reference in docs/ covers the API: every function registered in C or
-- exported by a Lua module, and every method of every object, has a heading
-- on the page that documents its module or object. The names are found at
-- run time, never listed here:
--   * the fields of require "jsonrpc", of require "jsonrpc.core", and of
--     every Lua module under lua/jsonrpc/ that returns a table;
--   * the methods of every metatable the C module registers (a string key
--     "jsonrpc.*" of the registry whose value has an __index table);
--   * the methods of the Lua objects: a server, an endpoint, its batch, a
--     connection and a listener (on 127.0.0.1:0, closed afterwards).
-- Names starting with "_" are private and need no heading.
--
-- THE RULE. A name is documented when a heading line of its page (a line
-- starting with "#") has a code span that begins with the qualified name:
--   `module.name(`   a function of a module        `jsonrpc.decode(text [, opts]) -> value`
--   `object:name(`   a method                      `server:method(name, fn [, opts]) -> server`
--   `module.name`    a value (table, string...),   `jsonrpc.codes`
--                    followed by the end of the span or by a character that
--                    cannot continue a name
-- `module` is the module's name (`core` for jsonrpc.core), `object` the
-- object's name in headings (`server`, `conn`...); MODULE_PAGES and
-- OBJECT_PAGES below give those names and the page each name must be on.
-- A failure lists every missing heading with its page. Also checked: every
-- constant of a table of constants (jsonrpc.codes, core.defaults) appears
-- on its page, in backquotes, in a line that also holds its value; and a
-- heading naming a method or a module field that does not exist (renamed,
-- removed) is reported as stale.
local jsonrpc = require "jsonrpc"
local core = require "jsonrpc.core"

-- Modules: the page of each field (`default` for the fields not listed),
-- and the name headings give the module. A module not listed here goes on
-- docs/internals.md under its own name.
local MODULE_PAGES = {
  jsonrpc = {
    default = "docs/README.md",
    encode = "docs/codec.md", decode = "docs/codec.md", null = "docs/codec.md",
    array = "docs/codec.md", object = "docs/codec.md",
    framer = "docs/framer.md",
    error = "docs/errors.md", is_error = "docs/errors.md", codes = "docs/errors.md",
    server = "docs/server.md",
    endpoint = "docs/endpoint.md",
    connect = "docs/connection.md", stdio = "docs/connection.md",
    spawn = "docs/connection.md", run = "docs/connection.md",
  },
  ["jsonrpc.core"] = { default = "docs/internals.md", heading_name = "core" },
  ["jsonrpc.ngx"] = { default = "docs/openresty.md" },
}
local DEFAULT_MODULE_PAGE = "docs/internals.md"

-- Objects: C metatables by registry name, and the Lua objects this spec
-- makes (by the names below), with their page and the name headings give
-- the object. A "jsonrpc.NAME" metatable not listed here goes on
-- docs/internals.md, named by the last part of NAME.
local OBJECT_PAGES = {
  ["jsonrpc.server"] = { page = "docs/server.md", name = "server" },
  ["jsonrpc.framer"] = { page = "docs/framer.md", name = "framer" },
  ["jsonrpc.process"] = { page = "docs/connection.md", name = "process" },
  ["jsonrpc.stream"] = { page = "docs/internals.md", name = "stream" },
  ["jsonrpc.endpoint"] = { page = "docs/internals.md", name = "cep" },
  ["jsonrpc.listener"] = { page = "docs/internals.md", name = "listener" },
  ["jsonrpc.timer"] = { page = "docs/internals.md", name = "timer" },
  ["jsonrpc.reader"] = { page = "docs/internals.md", name = "reader" },
  endpoint = { page = "docs/endpoint.md", name = "endpoint" },
  batch = { page = "docs/endpoint.md", name = "batch" },
  connection = { page = "docs/connection.md", name = "conn" },
  listener = { page = "docs/connection.md", name = "listener" },
}

-- Modules under lua/jsonrpc/ that cannot be loaded outside their host (a
-- Neovim or OpenResty adapter, say): module name -> why. Any other module
-- that fails to load fails this spec.
local NOT_LOADABLE_HERE = {}

local function private(name)
  return type(name) ~= "string" or name:sub(1, 1) == "_"
end

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  return text
end

local function lines_of(command)
  local p = assert(io.popen(command))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

--- The docs pages: page -> {text = ..., spans = {code spans of headings}}.
local function load_pages()
  local pages = {}
  for _, path in ipairs(lines_of("ls docs/*.md 2>/dev/null")) do
    local text = read(path)
    local spans = {}
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      if line:find("^#+%s") then
        for span in line:gmatch("`([^`]+)`") do spans[#spans + 1] = span end
      end
    end
    pages[path] = { text = text, spans = spans }
  end
  return pages
end

--- Whether a heading span on page names `qualified`: followed by "(" for a
-- function, by the end of the span or a character that cannot continue a
-- name for anything else.
local function has_heading(pages, page, qualified, is_function)
  local p = pages[page]
  if not p then return false end
  for _, span in ipairs(p.spans) do
    if span:sub(1, #qualified) == qualified then
      local rest = span:sub(#qualified + 1, #qualified + 1)
      if is_function then
        if rest == "(" then return true end
      elseif rest == "" or not rest:find("^[%w_]") then
        return true
      end
    end
  end
  return false
end

--- The Lua modules under lua/jsonrpc/ (init.lua is its directory's module).
local function lua_modules()
  local names = {}
  for _, path in ipairs(lines_of("find lua/jsonrpc -name '*.lua' | sort")) do
    local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    names[#names + 1] = name
  end
  return names
end

--- Every string key reachable through an object's __index chain, starting
-- at the metatable mt: name -> value.
local function methods_of(mt)
  local found, seen = {}, {}
  local index = mt and rawget(mt, "__index")
  while type(index) == "table" and not seen[index] do
    seen[index] = true
    for k, v in pairs(index) do
      if type(k) == "string" and found[k] == nil then found[k] = v end
    end
    local next_mt = getmetatable(index)
    index = next_mt and rawget(next_mt, "__index")
  end
  return found
end

--- A table of constants: non-empty, every value a number, string or boolean.
local function constants(t)
  if type(t) ~= "table" or next(t) == nil then return false end
  for k, v in pairs(t) do
    local tv = type(v)
    if type(k) ~= "string" or not (tv == "number" or tv == "string" or tv == "boolean") then
      return false
    end
  end
  return true
end

local function show(v)
  if type(v) == "number" and v == math.floor(v) and v > -2^53 and v < 2^53 then
    return ("%d"):format(v)
  end
  return tostring(v)
end

describe("the reference in docs/", function()
  local objects = {}   -- object name -> the object (Lua objects)
  local server, listener, conn

  setup(function()
    server = jsonrpc.server()
    objects.endpoint = jsonrpc.endpoint{ send = function() end }
    objects.batch = objects.endpoint:batch()
    listener = assert(server:listen("tcp://127.0.0.1:0"))
    conn = assert(jsonrpc.connect(listener.url))
    objects.listener = listener
    objects.connection = conn
  end)

  teardown(function()
    if conn then conn:close() end
    if listener then listener:close() end
    if server then server:close() end
    for _ = 1, 10 do jsonrpc.run("nowait") end
  end)

  --- Everything that needs a heading: {qualified, page, is_function, what},
  -- plus the tables of constants to check, and the known names for the
  -- stale check. Also the modules that could not be loaded.
  local function inventory()
    local needs, tables, problems = {}, {}, {}
    local known_fields = {}    -- heading name of a module -> its table
    local known_methods = {}   -- heading name of an object -> {method = true}
    local known_names = {}     -- module and registry names, named whole
    local tables_seen = {}

    -- what: "function" or "method"; a value that is no function is named by its type
    local function need(qualified, page, value, what, owner)
      if type(value) ~= "function" then what = type(value) end
      needs[#needs + 1] = { qualified = qualified, page = page, is_function = type(value) == "function",
                            what = ("a %s of %s"):format(what, owner) }
    end

    local function add_module(modname, t)
      local map = MODULE_PAGES[modname] or {}
      local hname = map.heading_name or modname
      known_fields[hname] = t
      known_names[modname] = true
      local names = {}
      for k in pairs(t) do if not private(k) then names[#names + 1] = k end end
      table.sort(names)
      for _, k in ipairs(names) do
        local v = t[k]
        local page = map[k] or map.default or DEFAULT_MODULE_PAGE
        need(hname .. "." .. k, page, v, "function", "module " .. modname)
        if constants(v) and not tables_seen[v] then
          tables_seen[v] = true
          tables[#tables + 1] = { qualified = hname .. "." .. k, page = page, t = v }
        end
      end
    end

    local function add_object(kind, mt)
      local spec = OBJECT_PAGES[kind]
      if not spec then
        spec = { page = "docs/internals.md", name = kind:match("([^.]+)$") }
      end
      local set = known_methods[spec.name] or {}
      known_methods[spec.name] = set
      local found = methods_of(mt)
      local names = {}
      for k in pairs(found) do
        set[k] = true
        if not private(k) then names[#names + 1] = k end
      end
      table.sort(names)
      for _, k in ipairs(names) do
        need(spec.name .. ":" .. k, spec.page, found[k], "method", kind)
      end
    end

    -- modules: jsonrpc first (the tables it shares with core are checked on
    -- its pages), then the C module, then every Lua module
    add_module("jsonrpc", jsonrpc)
    add_module("jsonrpc.core", core)
    for _, modname in ipairs(lua_modules()) do
      if modname ~= "jsonrpc" and not NOT_LOADABLE_HERE[modname] then
        local ok, t = pcall(require, modname)
        if not ok then
          problems[#problems + 1] = ("module %s does not load here (%s); if it needs its host, "
            .. "add it to NOT_LOADABLE_HERE in spec/docs_spec.lua"):format(modname, tostring(t))
        elseif type(t) == "table" then
          add_module(modname, t)
        end
      end
    end

    -- the Lua objects, then every metatable the C module registered
    for kind, obj in pairs(objects) do add_object(kind, getmetatable(obj)) end
    for name, mt in pairs(debug.getregistry()) do
      if type(name) == "string" and name:find("^jsonrpc%.") and type(mt) == "table"
         and type(rawget(mt, "__index")) == "table" then
        add_object(name, mt)
      end
      if type(name) == "string" and name:find("^jsonrpc%.") then known_names[name] = true end
    end
    return needs, tables, problems, known_fields, known_methods, known_names
  end

  it("has a heading for every function, method and field of the API", function()
    local pages = load_pages()
    assert(next(pages), "no docs/*.md pages found (run the specs from the checkout's top directory)")
    local needs, tables, problems = inventory()
    local missing = {}
    for _, n in ipairs(needs) do
      if not has_heading(pages, n.page, n.qualified, n.is_function) then
        missing[#missing + 1] = ("  %s: a heading with `%s%s` (%s)"):format(n.page, n.qualified,
          n.is_function and "(" or "", n.what)
      end
    end
    for _, tbl in ipairs(tables) do
      local text = pages[tbl.page] and pages[tbl.page].text or ""
      for k, v in pairs(tbl.t) do
        local found = false
        for line in (text .. "\n"):gmatch("([^\n]*)\n") do
          if line:find("`" .. k .. "`", 1, true) and line:find(show(v), 1, true) then
            found = true
            break
          end
        end
        if not found then
          missing[#missing + 1] = ("  %s: `%s` with its value %s on one line (in %s)"):format(
            tbl.page, k, show(v), tbl.qualified)
        end
      end
    end
    table.sort(missing)
    for _, p in ipairs(problems) do missing[#missing + 1] = "  " .. p end
    assert(#missing == 0, ("%d names lack documentation; add these headings to docs/ (the rule "
      .. "is at the head of spec/docs_spec.lua, the pages are its MODULE_PAGES and OBJECT_PAGES):\n%s")
      :format(#missing, table.concat(missing, "\n")))
    assert.is_true(#needs > 50)   -- the inventory found the API at all
  end)

  it("has no heading for a method or module field that does not exist", function()
    local pages = load_pages()
    local _, _, _, known_fields, known_methods, known_names = inventory()
    -- longest heading name of a module first: jsonrpc.endpoint before jsonrpc
    local modnames = {}
    for name in pairs(known_fields) do modnames[#modnames + 1] = name end
    table.sort(modnames, function(a, b) return #a > #b end)
    local stale = {}
    for page, p in pairs(pages) do
      for _, span in ipairs(p.spans) do
        local obj, method = span:match("^([%a_][%w_]*):([%a_][%w_]*)")
        if obj and known_methods[obj] and not known_methods[obj][method] then
          stale[#stale + 1] = ("  %s: `%s` (%s has no method %s)"):format(page, span, obj, method)
        elseif not obj and not known_names[span:match("^[%a_][%w_.]*")] then
          -- a module's or a metatable's own name (`jsonrpc.core`) is no field
          for _, modname in ipairs(modnames) do
            local field = span:sub(1, #modname + 1) == modname .. "."
                          and span:match("^([%a_][%w_]*)", #modname + 2)
            if field then
              if known_fields[modname][field] == nil then
                stale[#stale + 1] = ("  %s: `%s` (%s has no field %s)"):format(page, span, modname, field)
              end
              break
            end
          end
        end
      end
    end
    table.sort(stale)
    assert(#stale == 0, ("%d headings name what does not exist (renamed or removed?):\n%s"):format(
      #stale, table.concat(stale, "\n")))
  end)
end)
