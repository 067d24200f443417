#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: system_token_metrics
short_description: Write the findings of a system-token check as Prometheus metrics
version_added: 0.1.0
description:
  - Turns the plan of M(okera.auth.system_token_plan) (one entry per Secret key) into Prometheus
    metrics and writes them to a node_exporter textfile (O(textfile)) and/or pushes them to a
    Pushgateway (O(pushgateway_url)). The role C(okera.auth.system_token) calls it from its
    C(check) entry point.
  - "One series per cluster and Secret key, labelled C(cluster), C(namespace), C(secret), C(key)
    and C(subject): C(okera_system_token_expiry_timestamp_seconds) (C(exp)),
    C(okera_system_token_issued_timestamp_seconds) (C(iat)), C(okera_system_token_valid) (1 when the
    token verifies with the cluster's own key(s) and has not expired),
    C(okera_system_token_last_check_timestamp_seconds); C(okera_system_token_read_errors_total)
    (labels C(cluster), C(namespace), C(secret), C(key)); and per cluster the thresholds
    C(okera_system_token_rotate_before_seconds) and C(okera_system_token_alert_before_seconds), so
    alert rules can compare against each cluster's own settings."
  - Times are absolute Unix timestamps; the time left is computed in the query
    (C(okera_system_token_expiry_timestamp_seconds - time())).
  - A failed check (O(error) instead of O(plan)) keeps the last findings, so expiry and staleness
    alerts go on working from what was last known, and adds one to the read-error counter of every
    key. A token that is present but unreadable counts as a read error too. The counter is kept in
    the metrics themselves, its previous value read back from the textfile (when there is one), else
    from the Pushgateway's C(/api/v1/metrics).
  - The textfile holds the series of every cluster written to it; each run replaces only those of
    O(cluster), under a lock of the directory, through a temp file in the same directory and a rename
    (node_exporter reads only C(*.prom) files, so it never sees a partial file).
  - The Pushgateway group is C(<pushgateway_url>/metrics/job/<pushgateway_job>/cluster/<cluster>),
    replaced with C(PUT) after a successful check; after a failed one only the read-error counter is
    sent with C(POST), which leaves the last findings in place.
  - Never handles a token, only the plan's facts (subject, expiry, issue time, validity).
author:
  - okera.auth maintainers (@okera)
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the textfile and the Pushgateway and reports whether a finding would change; writes and pushes nothing.
  diff_mode:
    support: full
    details: Shows the textfile (or this cluster's pushed series) before and after.
  platform:
    platforms: posix
  idempotent:
    description: The same findings report no change.
    support: partial
    details: >-
      The time of the check is refreshed on every run (that is what makes a stale check visible),
      so the file is rewritten; that alone is not reported as a change.
options:
  cluster:
    description: The cluster's name, the C(cluster) label of every series and the Pushgateway grouping key.
    type: str
    required: true
  namespace:
    description: Namespace of the token Secret (label C(namespace)).
    type: str
    required: true
  secret:
    description: Name of the token Secret (label C(secret)).
    type: str
    required: true
  secret_keys:
    description: The Secret keys checked; with O(error), each one's read-error counter goes up.
    type: list
    elements: str
    required: true
  plan:
    description:
      - The RV(okera.auth.system_token_plan#module:plan) of a successful check; entries need C(key), and
        use C(subject), C(valid), C(expires_at), C(issued_at), C(present) and C(why).
      - Exactly one of O(plan) and O(error).
    type: list
    elements: dict
  error:
    description:
      - Why the check failed (the cluster or the Secret could not be read). The message is returned,
        not written into the metrics.
      - Exactly one of O(plan) and O(error).
    type: str
  rotate_before:
    description: The cluster's rotation threshold (V(7d), V(36h), seconds), exported as C(okera_system_token_rotate_before_seconds).
    type: str
  alert_before:
    description: The cluster's alert threshold, exported as C(okera_system_token_alert_before_seconds).
    type: str
  textfile:
    description:
      - Path of the node_exporter textfile, in its C(--collector.textfile.directory); it should end in C(.prom).
      - Its directory must exist. Its mode is V(0644) unless O(mode) says otherwise.
    type: path
  pushgateway_url:
    description: Base URL of a Pushgateway (C(http://) or C(https://), without credentials).
    type: str
  pushgateway_job:
    description: The C(job) of the Pushgateway group.
    type: str
    default: okera_system_token
  pushgateway_username:
    description: Basic-auth user for the Pushgateway.
    type: str
  pushgateway_password:
    description: Basic-auth password for the Pushgateway.
    type: str
  pushgateway_ca_cert:
    description: CA bundle to verify an C(https://) Pushgateway with; the system's by default.
    type: path
  pushgateway_validate_certs:
    description: Verify the Pushgateway's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the Pushgateway.
    type: int
    default: 10
notes:
  - Runs where Ansible runs it (the controller with C(ansible_connection=local)), so the textfile is
    written there; point a node_exporter's textfile collector at its directory.
  - Prometheus should scrape the Pushgateway with C(honor_labels=true), so the C(job) and C(cluster) labels are kept.
seealso:
  - module: okera.auth.system_token_plan
  - name: node_exporter textfile collector
    description: Metrics of batch jobs and cron jobs from files.
    link: https://github.com/prometheus/node_exporter#textfile-collector
  - name: Pushgateway
    description: Metrics of batch jobs pushed over HTTP.
    link: https://github.com/prometheus/pushgateway
"""

EXAMPLES = r"""
- name: Decide what to do with each token (reads only)
  okera.auth.system_token_plan:
    tokens: "{{ current.data }}"
    secret_keys: [SYSTEM_TOKEN_0]
    config: "{{ config.data }}"
  register: plan
  no_log: true

- name: Write the findings for node_exporter and the Pushgateway
  okera.auth.system_token_metrics:
    cluster: prod-eu
    namespace: okera
    secret: secrets
    secret_keys: [SYSTEM_TOKEN_0]
    plan: "{{ plan.plan }}"
    rotate_before: 7d
    alert_before: 3d
    textfile: /var/lib/prometheus/node-exporter/okera_system_token.prom
    pushgateway_url: http://pushgateway.monitoring:9091

- name: Count a check that could not read the cluster
  okera.auth.system_token_metrics:
    cluster: prod-eu
    namespace: okera
    secret: secrets
    secret_keys: [SYSTEM_TOKEN_0]
    error: "{{ ansible_failed_result.msg | default('failed') }}"
    textfile: /var/lib/prometheus/node-exporter/okera_system_token.prom
"""

RETURN = r"""
content:
  description: This cluster's series as written, in the text exposition format 0.0.4.
  returned: success
  type: str
  sample: |
    # HELP okera_system_token_valid 1 when the token verifies ...
    # TYPE okera_system_token_valid gauge
    okera_system_token_valid{cluster="prod-eu",key="SYSTEM_TOKEN_0",namespace="okera",secret="secrets",subject="okera_system_user"} 1
series:
  description: How many series this cluster has.
  returned: success
  type: int
  sample: 7
read_errors:
  description: The read-error counter of each Secret key after this run.
  returned: success
  type: dict
  sample: {SYSTEM_TOKEN_0: 0}
textfile:
  description: The textfile written (or that would be, in check mode).
  returned: when O(textfile) is given
  type: str
pushgateway_group_url:
  description: The Pushgateway group pushed to (or that would be), without credentials.
  returned: when O(pushgateway_url) is given
  type: str
  sample: http://pushgateway.monitoring:9091/metrics/job/okera_system_token/cluster/prod-eu
pushed:
  description: Whether the metrics were pushed (false in check mode).
  returned: when O(pushgateway_url) is given
  type: bool
error:
  description: The O(error) recorded, when the check had failed.
  returned: when O(error) is given
  type: str
"""

import os
import re
import stat
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils.metrics import (
    READ_ERRORS, MetricsError, Pushgateway, Target, check_samples, duration_or_none, failure_samples,
    findings, render, update_textfile,
)

_OCTAL_MODE = re.compile(r"0?[0-7]{3,4}")
_NEW_FILE = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 0, 0, 0, 0, 0, 0, 0))


def _file_mode(module: AnsibleModule, mode: Any, path: str) -> int:
    """The mode the file is created with: O(mode) as octal (a symbolic one applied to the current file,
    or to 0644 for a new one), else 0644."""
    if mode is None:
        return 0o644
    if isinstance(mode, int):
        return mode
    if _OCTAL_MODE.fullmatch(str(mode)):
        return int(str(mode), 8)
    try:
        current = os.stat(path)
    except OSError:
        current = _NEW_FILE
    try:
        return module._symbolic_mode_to_octal(current, str(mode))
    except ValueError as error:
        module.fail_json(msg="mode %s: %s" % (mode, error))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            secret=dict(type="str", required=True, no_log=False),
            secret_keys=dict(type="list", elements="str", required=True, no_log=False),
            plan=dict(type="list", elements="dict"),
            error=dict(type="str"),
            rotate_before=dict(type="str"),
            alert_before=dict(type="str"),
            textfile=dict(type="path"),
            pushgateway_url=dict(type="str"),
            pushgateway_job=dict(type="str", default="okera_system_token"),
            pushgateway_username=dict(type="str"),
            pushgateway_password=dict(type="str", no_log=True),
            pushgateway_ca_cert=dict(type="path"),
            pushgateway_validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=10),
        ),
        mutually_exclusive=[("plan", "error")],
        required_one_of=[("plan", "error"), ("textfile", "pushgateway_url")],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    if not params["textfile"] and not params["pushgateway_url"]:
        module.fail_json(msg="give textfile or pushgateway_url: where the metrics go")
    target = Target(params["cluster"], params["namespace"], params["secret"])
    try:
        thresholds = dict(rotate_before=duration_or_none(params["rotate_before"]),
                          alert_before=duration_or_none(params["alert_before"]))
        gateway = None
        if params["pushgateway_url"]:
            gateway = Pushgateway(params["pushgateway_url"], params["pushgateway_job"], params["pushgateway_username"],
                                  params["pushgateway_password"], params["pushgateway_ca_cert"],
                                  params["pushgateway_validate_certs"], params["timeout"])
    except OkeraAuthError as error:
        module.fail_json(msg=str(error))

    def build(previous):
        if params["error"] is not None:
            return failure_samples(target, params["secret_keys"], previous, **thresholds)
        return check_samples(target, params["plan"], previous, **thresholds)

    result = {"changed": False}
    diff = {}
    try:
        if params["textfile"]:
            # The textfile, when there is one, holds the previous values; the Pushgateway gets the same series.
            if not params["textfile"].endswith(".prom"):
                module.warn("node_exporter's textfile collector reads only files ending in .prom; %s is not one"
                            % params["textfile"])
            written = update_textfile(params["textfile"], target, build, _file_mode(module, params["mode"], params["textfile"]),
                                      module.check_mode)
            samples = written.samples
            result.update(textfile=written.path, changed=written.changed)
            diff = dict(before_header=written.path, before=written.before, after_header=written.path, after=written.after)
        if gateway is not None:
            grouping = {"cluster": target.cluster}
            group_url = gateway.group_url(grouping)
            result["pushgateway_group_url"] = group_url
            if not params["textfile"]:
                try:
                    held, known = [item for item in gateway.group_samples(grouping) if target.owns(item)], True
                except MetricsError as error:
                    module.warn("the Pushgateway's current metrics could not be read, so the read-error counter "
                                "restarts from 0: %s" % error)
                    held, known = [], False
                samples = build(held)
                result["changed"] = not known or findings(held) != findings(samples)
                diff = dict(before_header=group_url, before=render(held), after_header=group_url, after=render(samples))
            # After a failed check only the counter is sent (POST), so the last findings stay.
            body = render(samples if params["error"] is None else [item for item in samples if item.name == READ_ERRORS])
            result["pushed"] = False
            if not module.check_mode:
                gateway.push(grouping, body, replace=params["error"] is None)
                result["pushed"] = True
    except OkeraAuthError as error:
        module.fail_json(msg=str(error), **result)

    result.update(content=render(samples), series=len(samples),
                  read_errors={item.label("key"): int(item.value) for item in samples if item.name == READ_ERRORS})
    if params["error"] is not None:
        result["error"] = params["error"]
    if params["textfile"] and not module.check_mode:
        file_args = module.load_file_common_arguments(params, path=params["textfile"])
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
