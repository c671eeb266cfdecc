-- Webhooks (issue 29): the tenants' subscriptions, one cursor per (service feed, tenant) that
-- fan-out has reached, one delivery per (event, subscription) and every attempt to send it.
-- The sender of every replica shares the work: a delivery is leased (FOR UPDATE SKIP LOCKED)
-- and a lease that runs out (a replica killed mid-send) is taken over.
CREATE TABLE ${schema}.webhook_subscriptions (
  tenant_id             text        NOT NULL,
  subscription_id       text        NOT NULL,
  clinic_id             text        NOT NULL DEFAULT '',
  url                   text        NOT NULL,
  description           text        NOT NULL DEFAULT '',
  kinds                 text[]      NOT NULL DEFAULT '{}',
  state                 text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'disabled')),
  disabled_reason       text        NOT NULL DEFAULT '',
  secret                text        NOT NULL,
  previous_secret       text        NOT NULL DEFAULT '',
  previous_secret_until timestamptz,
  created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_by            text        NOT NULL,
  updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
  create_request_id     text        NOT NULL,
  rotate_request_id     text        NOT NULL DEFAULT '',
  deleted_at            timestamptz,
  PRIMARY KEY (tenant_id, subscription_id),
  UNIQUE (tenant_id, create_request_id)
);

CREATE TABLE ${schema}.webhook_cursors (
  source        text   NOT NULL,
  tenant_id     text   NOT NULL,
  last_sequence bigint NOT NULL,
  PRIMARY KEY (source, tenant_id)
);

CREATE TABLE ${schema}.webhook_deliveries (
  delivery_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       text        NOT NULL,
  subscription_id text        NOT NULL,
  message_id      text        NOT NULL,
  source          text        NOT NULL,
  sequence        bigint      NOT NULL,
  kind            text        NOT NULL,
  patient_id      text        NOT NULL DEFAULT '',
  resource_id     text        NOT NULL DEFAULT '',
  clinic_id       text        NOT NULL DEFAULT '',
  occurred_at     timestamptz NOT NULL,
  state           text        NOT NULL DEFAULT 'pending'
                              CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Retries give up this long after the first failure since the delivery was queued (or resumed).
  failing_since   timestamptz,
  -- The oldest undelivered delivery of its (subscription, patient): the only one that may be sent.
  head            boolean     NOT NULL DEFAULT false,
  lease_owner     text,
  lease_until     timestamptz,
  last_status     integer     NOT NULL DEFAULT 0,
  last_error      text        NOT NULL DEFAULT '',
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- What may be sent (each chain's head) by due time; each (subscription, patient) chain in order;
-- a subscription's list, newest first.
CREATE INDEX webhook_deliveries_due ON ${schema}.webhook_deliveries (next_attempt_at, delivery_id)
  WHERE state = 'pending' AND head;
CREATE INDEX webhook_deliveries_chain ON ${schema}.webhook_deliveries (subscription_id, patient_id, delivery_id)
  WHERE state = 'pending';
CREATE INDEX webhook_deliveries_list ON ${schema}.webhook_deliveries (tenant_id, subscription_id, delivery_id);

CREATE TABLE ${schema}.webhook_attempts (
  delivery_id  bigint      NOT NULL,
  attempt      integer     NOT NULL,
  attempted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  status_code  integer     NOT NULL DEFAULT 0,
  latency_ms   integer     NOT NULL DEFAULT 0,
  error        text        NOT NULL DEFAULT '',
  PRIMARY KEY (delivery_id, attempt)
);
