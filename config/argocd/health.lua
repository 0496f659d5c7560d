-- Argo CD health check for uredis.dezai.com/RedisBackupExport.
--
-- The verdicts follow kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status),
-- which Flux and kubectl-style tools use on the same status:
--   Current -> Healthy, InProgress -> Progressing, Failed -> Degraded,
--   Terminating -> Progressing.
-- Where kstatus guesses Current for lack of information (no status, no
-- Ready condition: states the operator never leaves a resource in once it
-- has answered), this check says Progressing. A resource whose
-- spec.suspend the operator has acknowledged is Suspended, Argo CD's own
-- status for it (kstatus has none: it says Current while the link is
-- valid, Failed once it is not).
--
-- It uses nothing but Lua's base library, so it runs in Argo CD's default
-- sandbox (no resource.customizations.useOpenLibs needed). Shipped as the
-- argocd-cm key resource.customizations.health.uredis.dezai.com_RedisBackupExport
-- (config/argocd/argocd-cm-patch.yaml); tested in internal/argocd and
-- test/integration (TestKstatus).

local hs = {}

local function verdict(health, message)
  hs.status = health
  hs.message = message
  return hs
end

-- "Reason: message" of a condition, or "" when it has neither.
local function describe(condition)
  if condition == nil then
    return ""
  end
  local reason, message = condition.reason, condition.message
  if type(reason) ~= "string" then
    reason = ""
  end
  if type(message) ~= "string" then
    message = ""
  end
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  return reason .. message
end

local metadata = obj.metadata
if type(metadata) ~= "table" then
  metadata = {}
end
if metadata.deletionTimestamp ~= nil then
  return verdict("Progressing", "the resource is being deleted")
end

local status = obj.status
if type(status) ~= "table" then
  return verdict("Progressing", "waiting for the operator: the resource has no status yet")
end

-- status.observedGeneration is the generation of the last attempt the
-- operator finished, whatever its outcome; the CRD defaults it to 0, so a
-- resource it has not answered yet reads as behind.
local generation = metadata.generation
local observed = status.observedGeneration
if type(observed) ~= "number" then
  observed = 0
end
if type(generation) == "number" and observed ~= generation then
  if observed == 0 then
    return verdict("Progressing", "waiting for the operator's first attempt at generation " .. tostring(generation))
  end
  return verdict("Progressing", "waiting for the operator to handle generation " .. tostring(generation) ..
    " (the status describes generation " .. tostring(observed) .. ")")
end

local conditions = status.conditions
if type(conditions) ~= "table" then
  conditions = {}
end

-- Ready carries the message a person needs; Reconciling and Stalled (set
-- only while Ready is not True) say whether the operator is still working
-- on it or needs someone to change something.
local ready = nil
for _, condition in ipairs(conditions) do
  if type(condition) == "table" and condition.type == "Ready" then
    ready = condition
    break
  end
end

-- Suspended, once the operator has handled the generation that asks for
-- it (above); the Ready message says until when the link stays valid.
local spec = obj.spec
if type(spec) == "table" and spec.suspend == true then
  local message = describe(ready)
  if message == "" then
    message = "the resource is suspended (spec.suspend: true)"
  end
  return verdict("Suspended", message)
end

-- Like kstatus, the first of Reconciling=True and Stalled=True decides.
for _, condition in ipairs(conditions) do
  if type(condition) == "table" and condition.status == "True" then
    local message = describe(ready)
    if message == "" then
      message = describe(condition)
    end
    if condition.type == "Reconciling" then
      return verdict("Progressing", message)
    end
    if condition.type == "Stalled" then
      return verdict("Degraded", message)
    end
  end
end

if ready == nil then
  return verdict("Progressing", "waiting for the operator to set the Ready condition")
end
if ready.status == "True" then
  -- Also while refreshing fails (reason RefreshFailing): the link in the
  -- Secret still works, and the message says until when.
  return verdict("Healthy", describe(ready))
end
return verdict("Progressing", describe(ready))
