/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment SessionFields on Session {\n    id\n    name\n    namespace\n    user\n    template\n    timeout\n    phase\n    reason\n    message\n    url\n    node\n    gpu\n    gpuSlices\n    createdAt\n    startedAt\n    expiresAt\n    timings {\n      admitted\n      placed\n      objectsApplied\n      podReady\n      firstFrame\n    }\n  }\n": typeof types.SessionFieldsFragmentDoc,
    "\n  query Me {\n    me {\n      user\n      groups\n      namespace\n      quota {\n        enforced\n        maxSessions\n        maxGpuSlices\n        maxTimeoutSeconds\n        defaultTimeoutSeconds\n        allowedTemplates\n        activeSessions\n        gpuSlicesInUse\n      }\n    }\n  }\n": typeof types.MeDocument,
    "\n  query Templates {\n    templates {\n      name\n      displayName\n      description\n      image\n      resources {\n        gpuSlices\n        gpuMemoryMib\n        cpuMillis\n        memoryMib\n        videoEncoder\n      }\n    }\n  }\n": typeof types.TemplatesDocument,
    "\n  query AdminTemplates {\n    templates {\n      name\n      displayName\n      resources {\n        gpuSlices\n      }\n      spec\n    }\n  }\n": typeof types.AdminTemplatesDocument,
    "\n  query Sessions($allUsers: Boolean!, $first: Int, $after: String) {\n    sessions(allUsers: $allUsers, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...SessionFields\n        }\n      }\n    }\n  }\n": typeof types.SessionsDocument,
    "\n  query SessionDetail($id: ID!) {\n    session(id: $id) {\n      ...SessionFields\n      conditions {\n        type\n        status\n        reason\n        message\n        lastTransitionTime\n      }\n      decisions {\n        hook\n        plugin\n        digest\n        verdict\n        message\n        latencyMicros\n      }\n      events {\n        type\n        reason\n        message\n        time\n        count\n      }\n    }\n  }\n": typeof types.SessionDetailDocument,
    "\n  subscription SessionEvents($id: ID) {\n    sessionEvents(id: $id) {\n      type\n      resourceVersion\n      session {\n        ...SessionFields\n      }\n    }\n  }\n": typeof types.SessionEventsDocument,
    "\n  mutation Launch($template: String!, $resources: ResourcesInput, $timeout: String) {\n    launchSession(template: $template, resources: $resources, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n": typeof types.LaunchDocument,
    "\n  mutation Terminate($id: ID!) {\n    terminateSession(id: $id)\n  }\n": typeof types.TerminateDocument,
    "\n  mutation Extend($id: ID!, $timeout: String!) {\n    extendSession(id: $id, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n": typeof types.ExtendDocument,
    "\n  mutation Connect($id: ID!) {\n    connectSession(id: $id) {\n      url\n      token\n      expiresAt\n    }\n  }\n": typeof types.ConnectDocument,
    "\n  fragment NodeFields on NodeInventory {\n    name\n    cpuMillisFree\n    memoryMibFree\n    gpus {\n      index\n      product\n      memoryMib\n      memoryUsedMib\n      slicesTotal\n      slicesUsed\n      encoderSessionsTotal\n      encoderSessionsUsed\n      sessions\n    }\n  }\n": typeof types.NodeFieldsFragmentDoc,
    "\n  query Nodes {\n    nodes {\n      ...NodeFields\n    }\n  }\n": typeof types.NodesDocument,
    "\n  subscription Inventory {\n    inventory {\n      ...NodeFields\n    }\n  }\n": typeof types.InventoryDocument,
    "\n  query Plugins {\n    plugins {\n      name\n      hook\n      sha256\n      phase\n      message\n      order\n      failurePolicy\n      spec\n    }\n  }\n": typeof types.PluginsDocument,
    "\n  query Decisions($first: Int) {\n    sessions(allUsers: true, first: $first) {\n      totalCount\n      edges {\n        node {\n          id\n          decisions {\n            plugin\n            verdict\n            latencyMicros\n          }\n        }\n      }\n    }\n  }\n": typeof types.DecisionsDocument,
    "\n  mutation UpsertPlugin($name: String!, $spec: JSON!) {\n    upsertPlugin(name: $name, spec: $spec)\n  }\n": typeof types.UpsertPluginDocument,
    "\n  mutation CheckPluginSettings($sha256: String!, $settings: JSON!) {\n    checkPluginSettings(sha256: $sha256, settings: $settings) {\n      valid\n      hook\n      field\n      message\n    }\n  }\n": typeof types.CheckPluginSettingsDocument,
    "\n  mutation DeletePlugin($name: String!) {\n    deletePlugin(name: $name)\n  }\n": typeof types.DeletePluginDocument,
    "\n  mutation UpsertTemplate($name: String!, $spec: JSON!) {\n    upsertTemplate(name: $name, spec: $spec)\n  }\n": typeof types.UpsertTemplateDocument,
    "\n  mutation DeleteTemplate($name: String!) {\n    deleteTemplate(name: $name)\n  }\n": typeof types.DeleteTemplateDocument,
};
const documents: Documents = {
    "\n  fragment SessionFields on Session {\n    id\n    name\n    namespace\n    user\n    template\n    timeout\n    phase\n    reason\n    message\n    url\n    node\n    gpu\n    gpuSlices\n    createdAt\n    startedAt\n    expiresAt\n    timings {\n      admitted\n      placed\n      objectsApplied\n      podReady\n      firstFrame\n    }\n  }\n": types.SessionFieldsFragmentDoc,
    "\n  query Me {\n    me {\n      user\n      groups\n      namespace\n      quota {\n        enforced\n        maxSessions\n        maxGpuSlices\n        maxTimeoutSeconds\n        defaultTimeoutSeconds\n        allowedTemplates\n        activeSessions\n        gpuSlicesInUse\n      }\n    }\n  }\n": types.MeDocument,
    "\n  query Templates {\n    templates {\n      name\n      displayName\n      description\n      image\n      resources {\n        gpuSlices\n        gpuMemoryMib\n        cpuMillis\n        memoryMib\n        videoEncoder\n      }\n    }\n  }\n": types.TemplatesDocument,
    "\n  query AdminTemplates {\n    templates {\n      name\n      displayName\n      resources {\n        gpuSlices\n      }\n      spec\n    }\n  }\n": types.AdminTemplatesDocument,
    "\n  query Sessions($allUsers: Boolean!, $first: Int, $after: String) {\n    sessions(allUsers: $allUsers, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...SessionFields\n        }\n      }\n    }\n  }\n": types.SessionsDocument,
    "\n  query SessionDetail($id: ID!) {\n    session(id: $id) {\n      ...SessionFields\n      conditions {\n        type\n        status\n        reason\n        message\n        lastTransitionTime\n      }\n      decisions {\n        hook\n        plugin\n        digest\n        verdict\n        message\n        latencyMicros\n      }\n      events {\n        type\n        reason\n        message\n        time\n        count\n      }\n    }\n  }\n": types.SessionDetailDocument,
    "\n  subscription SessionEvents($id: ID) {\n    sessionEvents(id: $id) {\n      type\n      resourceVersion\n      session {\n        ...SessionFields\n      }\n    }\n  }\n": types.SessionEventsDocument,
    "\n  mutation Launch($template: String!, $resources: ResourcesInput, $timeout: String) {\n    launchSession(template: $template, resources: $resources, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n": types.LaunchDocument,
    "\n  mutation Terminate($id: ID!) {\n    terminateSession(id: $id)\n  }\n": types.TerminateDocument,
    "\n  mutation Extend($id: ID!, $timeout: String!) {\n    extendSession(id: $id, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n": types.ExtendDocument,
    "\n  mutation Connect($id: ID!) {\n    connectSession(id: $id) {\n      url\n      token\n      expiresAt\n    }\n  }\n": types.ConnectDocument,
    "\n  fragment NodeFields on NodeInventory {\n    name\n    cpuMillisFree\n    memoryMibFree\n    gpus {\n      index\n      product\n      memoryMib\n      memoryUsedMib\n      slicesTotal\n      slicesUsed\n      encoderSessionsTotal\n      encoderSessionsUsed\n      sessions\n    }\n  }\n": types.NodeFieldsFragmentDoc,
    "\n  query Nodes {\n    nodes {\n      ...NodeFields\n    }\n  }\n": types.NodesDocument,
    "\n  subscription Inventory {\n    inventory {\n      ...NodeFields\n    }\n  }\n": types.InventoryDocument,
    "\n  query Plugins {\n    plugins {\n      name\n      hook\n      sha256\n      phase\n      message\n      order\n      failurePolicy\n      spec\n    }\n  }\n": types.PluginsDocument,
    "\n  query Decisions($first: Int) {\n    sessions(allUsers: true, first: $first) {\n      totalCount\n      edges {\n        node {\n          id\n          decisions {\n            plugin\n            verdict\n            latencyMicros\n          }\n        }\n      }\n    }\n  }\n": types.DecisionsDocument,
    "\n  mutation UpsertPlugin($name: String!, $spec: JSON!) {\n    upsertPlugin(name: $name, spec: $spec)\n  }\n": types.UpsertPluginDocument,
    "\n  mutation CheckPluginSettings($sha256: String!, $settings: JSON!) {\n    checkPluginSettings(sha256: $sha256, settings: $settings) {\n      valid\n      hook\n      field\n      message\n    }\n  }\n": types.CheckPluginSettingsDocument,
    "\n  mutation DeletePlugin($name: String!) {\n    deletePlugin(name: $name)\n  }\n": types.DeletePluginDocument,
    "\n  mutation UpsertTemplate($name: String!, $spec: JSON!) {\n    upsertTemplate(name: $name, spec: $spec)\n  }\n": types.UpsertTemplateDocument,
    "\n  mutation DeleteTemplate($name: String!) {\n    deleteTemplate(name: $name)\n  }\n": types.DeleteTemplateDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment SessionFields on Session {\n    id\n    name\n    namespace\n    user\n    template\n    timeout\n    phase\n    reason\n    message\n    url\n    node\n    gpu\n    gpuSlices\n    createdAt\n    startedAt\n    expiresAt\n    timings {\n      admitted\n      placed\n      objectsApplied\n      podReady\n      firstFrame\n    }\n  }\n"): (typeof documents)["\n  fragment SessionFields on Session {\n    id\n    name\n    namespace\n    user\n    template\n    timeout\n    phase\n    reason\n    message\n    url\n    node\n    gpu\n    gpuSlices\n    createdAt\n    startedAt\n    expiresAt\n    timings {\n      admitted\n      placed\n      objectsApplied\n      podReady\n      firstFrame\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      user\n      groups\n      namespace\n      quota {\n        enforced\n        maxSessions\n        maxGpuSlices\n        maxTimeoutSeconds\n        defaultTimeoutSeconds\n        allowedTemplates\n        activeSessions\n        gpuSlicesInUse\n      }\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      user\n      groups\n      namespace\n      quota {\n        enforced\n        maxSessions\n        maxGpuSlices\n        maxTimeoutSeconds\n        defaultTimeoutSeconds\n        allowedTemplates\n        activeSessions\n        gpuSlicesInUse\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Templates {\n    templates {\n      name\n      displayName\n      description\n      image\n      resources {\n        gpuSlices\n        gpuMemoryMib\n        cpuMillis\n        memoryMib\n        videoEncoder\n      }\n    }\n  }\n"): (typeof documents)["\n  query Templates {\n    templates {\n      name\n      displayName\n      description\n      image\n      resources {\n        gpuSlices\n        gpuMemoryMib\n        cpuMillis\n        memoryMib\n        videoEncoder\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminTemplates {\n    templates {\n      name\n      displayName\n      resources {\n        gpuSlices\n      }\n      spec\n    }\n  }\n"): (typeof documents)["\n  query AdminTemplates {\n    templates {\n      name\n      displayName\n      resources {\n        gpuSlices\n      }\n      spec\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Sessions($allUsers: Boolean!, $first: Int, $after: String) {\n    sessions(allUsers: $allUsers, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...SessionFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Sessions($allUsers: Boolean!, $first: Int, $after: String) {\n    sessions(allUsers: $allUsers, first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          ...SessionFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SessionDetail($id: ID!) {\n    session(id: $id) {\n      ...SessionFields\n      conditions {\n        type\n        status\n        reason\n        message\n        lastTransitionTime\n      }\n      decisions {\n        hook\n        plugin\n        digest\n        verdict\n        message\n        latencyMicros\n      }\n      events {\n        type\n        reason\n        message\n        time\n        count\n      }\n    }\n  }\n"): (typeof documents)["\n  query SessionDetail($id: ID!) {\n    session(id: $id) {\n      ...SessionFields\n      conditions {\n        type\n        status\n        reason\n        message\n        lastTransitionTime\n      }\n      decisions {\n        hook\n        plugin\n        digest\n        verdict\n        message\n        latencyMicros\n      }\n      events {\n        type\n        reason\n        message\n        time\n        count\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription SessionEvents($id: ID) {\n    sessionEvents(id: $id) {\n      type\n      resourceVersion\n      session {\n        ...SessionFields\n      }\n    }\n  }\n"): (typeof documents)["\n  subscription SessionEvents($id: ID) {\n    sessionEvents(id: $id) {\n      type\n      resourceVersion\n      session {\n        ...SessionFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Launch($template: String!, $resources: ResourcesInput, $timeout: String) {\n    launchSession(template: $template, resources: $resources, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n"): (typeof documents)["\n  mutation Launch($template: String!, $resources: ResourcesInput, $timeout: String) {\n    launchSession(template: $template, resources: $resources, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Terminate($id: ID!) {\n    terminateSession(id: $id)\n  }\n"): (typeof documents)["\n  mutation Terminate($id: ID!) {\n    terminateSession(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Extend($id: ID!, $timeout: String!) {\n    extendSession(id: $id, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n"): (typeof documents)["\n  mutation Extend($id: ID!, $timeout: String!) {\n    extendSession(id: $id, timeout: $timeout) {\n      ...SessionFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Connect($id: ID!) {\n    connectSession(id: $id) {\n      url\n      token\n      expiresAt\n    }\n  }\n"): (typeof documents)["\n  mutation Connect($id: ID!) {\n    connectSession(id: $id) {\n      url\n      token\n      expiresAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment NodeFields on NodeInventory {\n    name\n    cpuMillisFree\n    memoryMibFree\n    gpus {\n      index\n      product\n      memoryMib\n      memoryUsedMib\n      slicesTotal\n      slicesUsed\n      encoderSessionsTotal\n      encoderSessionsUsed\n      sessions\n    }\n  }\n"): (typeof documents)["\n  fragment NodeFields on NodeInventory {\n    name\n    cpuMillisFree\n    memoryMibFree\n    gpus {\n      index\n      product\n      memoryMib\n      memoryUsedMib\n      slicesTotal\n      slicesUsed\n      encoderSessionsTotal\n      encoderSessionsUsed\n      sessions\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Nodes {\n    nodes {\n      ...NodeFields\n    }\n  }\n"): (typeof documents)["\n  query Nodes {\n    nodes {\n      ...NodeFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription Inventory {\n    inventory {\n      ...NodeFields\n    }\n  }\n"): (typeof documents)["\n  subscription Inventory {\n    inventory {\n      ...NodeFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Plugins {\n    plugins {\n      name\n      hook\n      sha256\n      phase\n      message\n      order\n      failurePolicy\n      spec\n    }\n  }\n"): (typeof documents)["\n  query Plugins {\n    plugins {\n      name\n      hook\n      sha256\n      phase\n      message\n      order\n      failurePolicy\n      spec\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Decisions($first: Int) {\n    sessions(allUsers: true, first: $first) {\n      totalCount\n      edges {\n        node {\n          id\n          decisions {\n            plugin\n            verdict\n            latencyMicros\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Decisions($first: Int) {\n    sessions(allUsers: true, first: $first) {\n      totalCount\n      edges {\n        node {\n          id\n          decisions {\n            plugin\n            verdict\n            latencyMicros\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpsertPlugin($name: String!, $spec: JSON!) {\n    upsertPlugin(name: $name, spec: $spec)\n  }\n"): (typeof documents)["\n  mutation UpsertPlugin($name: String!, $spec: JSON!) {\n    upsertPlugin(name: $name, spec: $spec)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CheckPluginSettings($sha256: String!, $settings: JSON!) {\n    checkPluginSettings(sha256: $sha256, settings: $settings) {\n      valid\n      hook\n      field\n      message\n    }\n  }\n"): (typeof documents)["\n  mutation CheckPluginSettings($sha256: String!, $settings: JSON!) {\n    checkPluginSettings(sha256: $sha256, settings: $settings) {\n      valid\n      hook\n      field\n      message\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeletePlugin($name: String!) {\n    deletePlugin(name: $name)\n  }\n"): (typeof documents)["\n  mutation DeletePlugin($name: String!) {\n    deletePlugin(name: $name)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpsertTemplate($name: String!, $spec: JSON!) {\n    upsertTemplate(name: $name, spec: $spec)\n  }\n"): (typeof documents)["\n  mutation UpsertTemplate($name: String!, $spec: JSON!) {\n    upsertTemplate(name: $name, spec: $spec)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteTemplate($name: String!) {\n    deleteTemplate(name: $name)\n  }\n"): (typeof documents)["\n  mutation DeleteTemplate($name: String!) {\n    deleteTemplate(name: $name)\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;