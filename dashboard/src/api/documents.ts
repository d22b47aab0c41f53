// Every GraphQL operation the dashboard sends. `npm run codegen` types them from
// schema.graphql into src/gql (committed; src/gql.test.ts checks it is current).
import { graphql } from '../gql';

export const SessionFields = graphql(`
  fragment SessionFields on Session {
    id
    name
    namespace
    user
    template
    timeout
    phase
    reason
    message
    url
    node
    gpu
    gpuSlices
    createdAt
    startedAt
    expiresAt
    timings {
      admitted
      placed
      objectsApplied
      podReady
      firstFrame
    }
  }
`);

export const MeQuery = graphql(`
  query Me {
    me {
      user
      groups
      namespace
      quota {
        enforced
        maxSessions
        maxGpuSlices
        maxTimeoutSeconds
        defaultTimeoutSeconds
        allowedTemplates
        activeSessions
        gpuSlicesInUse
      }
    }
  }
`);

export const TemplatesQuery = graphql(`
  query Templates {
    templates {
      name
      displayName
      description
      image
      resources {
        gpuSlices
        gpuMemoryMib
        cpuMillis
        memoryMib
        videoEncoder
      }
    }
  }
`);

export const AdminTemplatesQuery = graphql(`
  query AdminTemplates {
    templates {
      name
      displayName
      resources {
        gpuSlices
      }
      spec
    }
  }
`);

export const SessionsQuery = graphql(`
  query Sessions($allUsers: Boolean!, $first: Int, $after: String) {
    sessions(allUsers: $allUsers, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...SessionFields
        }
      }
    }
  }
`);

export const SessionDetailQuery = graphql(`
  query SessionDetail($id: ID!) {
    session(id: $id) {
      ...SessionFields
      conditions {
        type
        status
        reason
        message
        lastTransitionTime
      }
      decisions {
        hook
        plugin
        digest
        verdict
        message
        latencyMicros
      }
      events {
        type
        reason
        message
        time
        count
      }
    }
  }
`);

export const SessionEventsSubscription = graphql(`
  subscription SessionEvents($id: ID) {
    sessionEvents(id: $id) {
      type
      resourceVersion
      session {
        ...SessionFields
      }
    }
  }
`);

export const LaunchMutation = graphql(`
  mutation Launch($template: String!, $resources: ResourcesInput, $timeout: String) {
    launchSession(template: $template, resources: $resources, timeout: $timeout) {
      ...SessionFields
    }
  }
`);

export const TerminateMutation = graphql(`
  mutation Terminate($id: ID!) {
    terminateSession(id: $id)
  }
`);

export const ExtendMutation = graphql(`
  mutation Extend($id: ID!, $timeout: String!) {
    extendSession(id: $id, timeout: $timeout) {
      ...SessionFields
    }
  }
`);

export const ConnectMutation = graphql(`
  mutation Connect($id: ID!) {
    connectSession(id: $id) {
      url
      token
      expiresAt
    }
  }
`);

export const NodeFields = graphql(`
  fragment NodeFields on NodeInventory {
    name
    cpuMillisFree
    memoryMibFree
    gpus {
      index
      product
      memoryMib
      memoryUsedMib
      slicesTotal
      slicesUsed
      encoderSessionsTotal
      encoderSessionsUsed
      sessions
    }
  }
`);

export const NodesQuery = graphql(`
  query Nodes {
    nodes {
      ...NodeFields
    }
  }
`);

export const InventorySubscription = graphql(`
  subscription Inventory {
    inventory {
      ...NodeFields
    }
  }
`);

export const PluginsQuery = graphql(`
  query Plugins {
    plugins {
      name
      hook
      sha256
      phase
      message
      order
      failurePolicy
      spec
    }
  }
`);

export const DecisionsQuery = graphql(`
  query Decisions($first: Int) {
    sessions(allUsers: true, first: $first) {
      totalCount
      edges {
        node {
          id
          decisions {
            plugin
            verdict
            latencyMicros
          }
        }
      }
    }
  }
`);

export const UpsertPluginMutation = graphql(`
  mutation UpsertPlugin($name: String!, $spec: JSON!) {
    upsertPlugin(name: $name, spec: $spec)
  }
`);

export const CheckPluginSettingsMutation = graphql(`
  mutation CheckPluginSettings($sha256: String!, $settings: JSON!) {
    checkPluginSettings(sha256: $sha256, settings: $settings) {
      valid
      hook
      field
      message
    }
  }
`);

export const DeletePluginMutation = graphql(`
  mutation DeletePlugin($name: String!) {
    deletePlugin(name: $name)
  }
`);

export const UpsertTemplateMutation = graphql(`
  mutation UpsertTemplate($name: String!, $spec: JSON!) {
    upsertTemplate(name: $name, spec: $spec)
  }
`);

export const DeleteTemplateMutation = graphql(`
  mutation DeleteTemplate($name: String!) {
    deleteTemplate(name: $name)
  }
`);
