// The GPU inventory: nodes × GPUs, slices and encoder sessions used/total and who holds them,
// live from the `inventory` subscription.
import { Link } from 'react-router';
import { useQuery, useSubscription } from 'urql';

import { InventorySubscription, NodesQuery } from '../../api/documents';
import { Empty, ErrorBox, Loading } from '../../components/ui';
import { sessionName } from '../../domain/sessions';
import type { NodeFieldsFragment } from '../../gql/graphql';

function Usage({ label, used, total }: { label: string; used: number; total: number }) {
  return (
    <div className="usage">
      <span>
        {label} {used}/{total}
      </span>
      <meter min={0} max={Math.max(total, 1)} value={Math.min(used, Math.max(total, 1))} aria-label={`${label} ${used} of ${total} used`} />
    </div>
  );
}

export function Inventory() {
  const [first] = useQuery({ query: NodesQuery, requestPolicy: 'network-only' });
  const [live] = useSubscription({ query: InventorySubscription });
  const nodes: NodeFieldsFragment[] | undefined = live.data?.inventory ?? first.data?.nodes;

  return (
    <section aria-labelledby="inventory-title">
      <h1 id="inventory-title">GPU inventory</h1>
      <p className="muted" aria-live="polite">
        {live.data ? 'Live' : live.error ? 'Live updates interrupted (retrying)' : 'Connecting to live updates…'}
      </p>
      {!nodes ? (
        first.error ? <ErrorBox error={first.error} title="Inventory unavailable" /> : <Loading what="the inventory" />
      ) : nodes.length === 0 ? (
        <Empty>No nodes.</Empty>
      ) : (
        <div className="grid" role="table" aria-label="Nodes and their GPUs">
          {nodes.map((n) => (
            <div key={n.name} className="node" role="row" data-node={n.name}>
              <div className="node-name" role="rowheader">
                <strong>{n.name}</strong>
                <span className="muted">
                  {(n.cpuMillisFree / 1000).toFixed(1)} CPU, {(n.memoryMibFree / 1024).toFixed(1)} GiB free
                </span>
              </div>
              {n.gpus.length === 0 ? (
                <div role="cell" className="gpu none">
                  no GPUs
                </div>
              ) : (
                n.gpus.map((g) => (
                  <div key={g.index} role="cell" className={g.slicesUsed > 0 ? 'gpu busy' : 'gpu'} data-gpu={g.index}>
                    <div>
                      <strong>GPU {g.index}</strong> <span className="muted">{g.product}</span>
                    </div>
                    <Usage label="slices" used={g.slicesUsed} total={g.slicesTotal} />
                    <Usage label="encoders" used={g.encoderSessionsUsed} total={g.encoderSessionsTotal} />
                    <Usage label="MiB" used={g.memoryUsedMib} total={g.memoryMib} />
                    {g.sessions.length > 0 && (
                      <ul className="holders">
                        {g.sessions.map((id) => (
                          <li key={id}>
                            <Link to={`/session/${encodeURIComponent(id)}`}>{sessionName(id)}</Link>
                          </li>
                        ))}
                      </ul>
                    )}
                  </div>
                ))
              )}
            </div>
          ))}
        </div>
      )}
    </section>
  );
}
