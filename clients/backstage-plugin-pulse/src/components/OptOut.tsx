/** The signed-in user's choice to be left out of usage analytics, kept by Backstage's storage
 * API where Pulse's analytics module reads it (bucket `pulse`, key `optOut`: the module's
 * `privacy.ts`). Shown to everyone who opens the page, readers of the insights or not. */

import { configApiRef, storageApiRef, useApi } from '@backstage/core-plugin-api';
import { FormControlLabel, Switch, Typography } from '@material-ui/core';
import { useEffect, useMemo, useState } from 'react';

const BUCKET = 'pulse';
const KEY = 'optOut';

export function OptOut() {
  const storage = useApi(storageApiRef);
  const config = useApi(configApiRef);
  const bucket = useMemo(() => storage.forBucket(BUCKET), [storage]);
  const [optedOut, setOptedOut] = useState(() => bucket.snapshot<boolean>(KEY).value === true);
  useEffect(() => {
    const subscription = bucket.observe$<boolean>(KEY).subscribe({ next: s => setOptedOut(s.value === true) });
    return () => subscription.unsubscribe();
  }, [bucket]);
  const drops = config.getOptionalString('app.analytics.pulse.optOut') === 'drop';
  return (
    <div data-opt-out={optedOut ? 'on' : 'off'}>
      <FormControlLabel
        control={<Switch checked={optedOut} color="primary" onChange={(_event, on) => void bucket.set(KEY, on)} />}
        label="Leave me out of usage analytics"
      />
      <Typography variant="caption" color="textSecondary" component="p">
        {optedOut
          ? drops
            ? 'What you do in this Backstage is not sent to Pulse.'
            : 'What you do in this Backstage is counted without your name.'
          : 'Pulse counts what you do in this Backstage under a keyed id, never your name.'}
      </Typography>
    </div>
  );
}
