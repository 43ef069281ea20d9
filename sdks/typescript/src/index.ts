/** PlexSpaces actors in TypeScript: the base classes and the host API. */

export {
  BuildError,
  EventActor,
  type FacetList,
  FsmActor,
  PlexSpacesActor,
  snakeCase,
  type Transition,
  WorkflowActor,
} from "./actor.js";
export { SDK_VERSION, WORLD_VERSION } from "./dispatch.js";
export {
  type BlobInfo,
  blobs,
  channels,
  type Delivery,
  type Host,
  host,
  HostError,
  type LogLevel,
  processGroups,
  type Registration,
  registry,
  type ServiceSummary,
  Suspended,
} from "./host.js";
