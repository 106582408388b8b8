// Creating a task in steps (S3 or image), then a review before anything is
// created. Remotes are chosen from those the agent knows: credentials are
// never typed into or shown by the page. Each field is checked as the user
// types (fields.js), and the whole definition is sent to the agent as a dry
// run (POST /tasks?dry_run=true) a moment after typing stops; the agent's
// own refusal is shown next to the field it names. "Clone" opens the wizard
// filled from another task.

import { h, fill, toast, nextId, tableWrap } from './dom.js';
import * as api from './api.js';
import * as F from './fields.js';

const S3_PROVIDERS = [
  ['aws', 'Amazon S3 (global regions)', ['aws']],
  ['aws-cn', 'Amazon S3 (China regions)', ['aws-cn']],
  ['aliyun', 'Aliyun OSS', ['aliyun']],
  ['tencent', 'Tencent COS', ['tencent']],
  ['qiniu', 'Qiniu Kodo', ['qiniu']],
  ['gcs', 'Google Cloud Storage', ['gcs']],
  ['compat', 'Any S3-compatible endpoint (MinIO, Ceph, other)', ['minio', 'ceph', 'other']],
  ['local', 'A directory on the agent\'s host', []],
];
const REGISTRIES = [
  ['dockerhub', 'Docker Hub', (r) => r.type === 'registry' && /(^|\.)docker\.io$/.test(host(r))],
  ['gcr', 'Google (GCR, Artifact Registry)', (r) => r.type === 'registry' && /(^|\.)gcr\.io$|-docker\.pkg\.dev$/.test(host(r))],
  ['quay', 'Quay', (r) => r.type === 'registry' && /(^|\.)quay\.io$/.test(host(r))],
  ['ecr', 'Amazon ECR', (r) => r.type === 'ecr'],
  ['any', 'Any registry', (r) => r.type === 'registry' || r.type === 'ecr'],
];
const STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR',
  'GLACIER', 'DEEP_ARCHIVE', 'REDUCED_REDUNDANCY'];
const ACLS = ['private', 'public-read', 'public-read-write', 'authenticated-read', 'aws-exec-read',
  'bucket-owner-read', 'bucket-owner-full-control'];
// Settings the wizard draws by hand; the rest of the table goes to "Advanced".
const HAND_DRAWN = new Set(['source', 'destination', 'schedule', 'timezone', 'enabled', 'events', 'notify',
  'include', 'exclude', 'delete', 'max_delete', 'images', 'all', 'tags', 'platform', 'storage_class', 'acl',
  'sse', 'sse_kms_key_id', 'metadata', 'notify_remote', 'requester_pays']);

function host(r) {
  try { return new URL(r.endpoint).hostname; } catch { return ''; }
}

function providerOf(r) {
  const p = S3_PROVIDERS.find(([, , names]) => names.includes(r.provider || 'other'));
  return p ? p[0] : 'compat';
}

// "remote:bucket/pre/fix" -> parts (and the inverse).
function splitS3(text) {
  const m = /^([^:]*):([^/]*)\/?(.*)$/.exec(text || '');
  return m ? { remote: m[1], bucket: m[2], prefix: m[3] } : { remote: '', bucket: '', prefix: '' };
}

export async function wizardView(main, { clone }) {
  const [schema, agentDoc, base] = await Promise.all([api.agent.settings(), api.agent.get(),
    clone ? api.tasks.get(clone) : Promise.resolve(null)]);
  const settings = Object.fromEntries(schema.settings.map((s) => [s.name, s]));
  const remotes = agentDoc.remotes || [];
  const s3Remotes = remotes.filter((r) => r.type === 's3');
  const fields = {};   // key -> field, for errors named by the API
  const add = (f, step) => { f.step = step; fields[f.key] = f; return f; };

  // ---- step 1: the task
  const kindS3 = h('input', { type: 'radio', name: 'kind', id: 'kind-s3', value: 's3', checked: true });
  const kindImg = h('input', { type: 'radio', name: 'kind', id: 'kind-image', value: 'image' });
  const kind = () => (kindImg.checked ? 'image' : 's3');
  const name = add(F.field({ key: 'name', label: 'Task name', control: F.textInput({ id: 'f-name', required: true }),
    help: 'Names the task in the list, the API and dth task; 1 to 255 bytes.', check: F.nameProblem }), 'task');

  // ---- S3 source
  const provider = F.select(S3_PROVIDERS.map(([v, l]) => [v, l]), { id: 'f-provider' });
  const remoteOptions = (sel, list, empty) => {
    const keep = sel.value;
    fill(sel, list.length ? list.map((r) => h('option', { value: r.name }, `${r.name} (${r.endpoint || r.provider || r.type})`))
      : h('option', { value: '' }, empty));
    if (list.some((r) => r.name === keep)) sel.value = keep;
  };
  const srcRemote = add(F.field({ key: 'source_remote', label: 'Source remote', control: F.select([], { id: 'f-src-remote' }),
    help: 'Remotes are the agent\'s [remote NAME] sections; their credentials stay there.', check: (t) => (t ? null : 'no remote of this provider is configured') }), 'source');
  const rpNote = h('p', { class: 'help', id: 'rp-note' });
  const rp = add(F.field({ key: 'requester_pays', label: 'Requester pays: the requests to the source bucket are billed to us',
    control: F.checkbox({ id: 'f-requester-pays' }) }), 'source');
  const srcBucket = add(F.field({ key: 'source_bucket', label: 'Source bucket', control: F.textInput({ id: 'f-src-bucket' }), check: F.bucketProblem }), 'source');
  const srcPrefix = add(F.field({ key: 'source_prefix', label: 'Source prefix (optional)', control: F.textInput({ id: 'f-src-prefix' }),
    help: 'Only keys under this prefix, e.g. logs/2026/.', check: (t) => F.settingProblem({ type: 'text', max: 1024 }, t) }), 'source');
  const srcPath = add(F.field({ key: 'source_path', label: 'Directory', control: F.textInput({ id: 'f-src-path' }),
    help: 'An absolute path on the agent\'s host, allowed by [agent] local_sources.', check: (t) => (t.startsWith('/') ? null : 'an absolute path') }), 'source');
  const providerField = add(F.field({ key: 'provider', label: 'Source provider', control: provider }), 'source');
  const drawSource = () => {
    const p = provider.value, local = p === 'local';
    const names = (S3_PROVIDERS.find(([v]) => v === p) || [, , []])[2];
    const list = s3Remotes.filter((r) => names.includes(r.provider || 'other'));
    remoteOptions(srcRemote.control, list, 'No remote of this provider is configured');
    for (const f of [srcRemote, srcBucket, srcPrefix, rp]) f.el.hidden = local;
    srcPath.el.hidden = !local;
    const r = remotes.find((x) => x.name === srcRemote.control.value);
    fill(rpNote, local || !r ? '' : r.requester_pays ? 'This remote sends every request as requester pays (requester_pays in its section).'
      : 'This remote does not send requests as requester pays; tick the box below for a bucket that needs it.');
  };
  provider.addEventListener('change', drawSource);
  srcRemote.control.addEventListener('change', drawSource);

  // ---- image source
  const regKind = F.select(REGISTRIES.map(([v, l]) => [v, l]), { id: 'f-registry' });
  const regKindField = add(F.field({ key: 'registry', label: 'Source registry', control: regKind }), 'source');
  const imgRemote = add(F.field({ key: 'image_source_remote', label: 'Registry remote', control: F.select([], { id: 'f-img-remote' }),
    check: (t) => (t ? null : 'no remote of this kind is configured') }), 'source');
  const drawRegistries = () => {
    const test = REGISTRIES.find(([v]) => v === regKind.value)[2];
    remoteOptions(imgRemote.control, remotes.filter(test), 'No remote of this kind is configured');
  };
  regKind.addEventListener('change', drawRegistries);
  const allImg = add(F.field({ key: 'all', label: 'Every repository of the source (catalog)', control: F.checkbox({ id: 'f-all' }) }), 'source');
  const images = add(F.field({ key: 'images', label: 'Images', control: F.textarea({ id: 'f-images', placeholder: 'library/nginx:1.27\nteam/app' }),
    help: 'One per line: REPO (every tag) or REPO:TAG.', check: (t) => (allImg.control.checked || F.lines(t).length ? null : 'list at least one image, or copy every repository') }), 'source');
  allImg.control.addEventListener('change', () => { images.el.hidden = allImg.control.checked; images.validate(); });
  const tags = add(F.field({ key: 'tags', label: 'Tag filter (optional)', control: F.textInput({ id: 'f-tags', placeholder: '^v[0-9]+\\.' }),
    help: 'A POSIX extended regular expression that tags must match.', check: (t) => F.settingProblem(settings.tags, t) }), 'source');
  const platform = add(F.field({ key: 'platform', label: 'Platforms (optional)', control: F.textInput({ id: 'f-platform', placeholder: 'linux/amd64,linux/arm64' }),
    help: 'OS/ARCH[/VARIANT], comma-separated; empty copies every platform.', check: (t) => (!t || /^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?(,[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?)*$/.test(t) ? null : 'like linux/amd64,linux/arm64/v8') }), 'source');

  // ---- destination
  const dstRemote = add(F.field({ key: 'destination_remote', label: 'Destination remote', control: F.select([], { id: 'f-dst-remote' }),
    check: (t) => (t ? null : 'no remote of this kind is configured') }), 'destination');
  const dstBucket = add(F.field({ key: 'destination_bucket', label: 'Destination bucket', control: F.textInput({ id: 'f-dst-bucket' }), check: F.bucketProblem }), 'destination');
  const dstPrefix = add(F.field({ key: 'destination_prefix', label: 'Destination prefix (optional)', control: F.textInput({ id: 'f-dst-prefix' }),
    help: 'Keys (or repositories) are written under this prefix.', check: (t) => F.settingProblem({ type: 'text', max: 1024 }, t) }), 'destination');
  const drawDestination = () => {
    remoteOptions(dstRemote.control, kind() === 's3' ? s3Remotes : remotes.filter((r) => r.type === 'registry' || r.type === 'ecr'),
      'No remote of this kind is configured');
    dstBucket.el.hidden = kind() !== 's3';
  };

  // ---- S3 options
  const gen = (key, step) => add(F.settingField(settings[key], 's3'), step);
  const metadata = gen('metadata', 'options');
  const storage = add(F.field({ key: 'storage_class', label: 'Storage class (optional)',
    control: F.textInput({ id: 'f-storage-class', list: 'storage-classes', placeholder: 'the bucket\'s default' }),
    help: 'The class objects get at the destination.', check: (t) => F.settingProblem(settings.storage_class, t) }), 'options');
  const acl = add(F.field({ key: 'acl', label: 'ACL', control: F.select([['', 'none (the bucket\'s default)'], ...ACLS.map((a) => [a, a])], { id: 'f-acl' }) }), 'options');
  const sse = add(F.field({ key: 'sse', label: 'Server-side encryption', control: F.select([['', 'none (the bucket\'s default)'], ...(settings.sse.words || []).map((w) => [w, w])], { id: 'f-sse' }) }), 'options');
  const kms = add(F.field({ key: 'sse_kms_key_id', label: 'KMS key (for aws:kms)', control: F.textInput({ id: 'f-kms' }),
    check: (t) => F.settingProblem(settings.sse_kms_key_id, t) }), 'options');
  const drawSse = () => { kms.el.hidden = sse.control.value !== 'aws:kms'; };
  sse.control.addEventListener('change', drawSse);
  const globCheck = (t) => F.lines(t).map((l) => F.settingProblem({ type: 'text', max: 1024 }, l)).find(Boolean) || null;
  const include = add(F.field({ key: 'include', label: 'Include (optional)', control: F.textarea({ id: 'f-include', placeholder: '*.parquet' }),
    help: 'Glob patterns, one per line: only matching keys are copied.', check: globCheck }), 'options');
  const exclude = add(F.field({ key: 'exclude', label: 'Exclude (optional)', control: F.textarea({ id: 'f-exclude', placeholder: 'tmp/*' }),
    help: 'Glob patterns, one per line: matching keys are skipped.', check: globCheck }), 'options');
  const del = add(F.field({ key: 'delete', label: 'Delete at the destination what the source no longer has', control: F.checkbox({ id: 'f-delete' }) }), 'options');
  const delWarn = h('p', { class: 'warning', id: 'delete-warning', role: 'note', hidden: true },
    'Warning: objects under the destination prefix that are not at the source will be deleted. ',
    'Check the prefix, and set a limit below.');
  const maxDel = add(F.field({ key: 'max_delete', label: 'Delete at most (optional)', control: F.textInput({ id: 'f-max-delete', placeholder: 'e.g. 1000 or 5%' }),
    help: 'A run that would delete more stops before deleting anything.', check: (t) => (!t || /^\d+%?$/.test(t) ? null : 'a number, or a percentage such as 5%') }), 'options');
  const drawDelete = () => { delWarn.hidden = !del.control.checked; maxDel.el.hidden = !del.control.checked; };
  del.control.addEventListener('change', drawDelete);

  // ---- schedule, events, notifications
  const schedMode = F.select([['every', 'Repeat every…'], ['cron', 'On a cron schedule'], ['once', 'Once']], { id: 'f-sched-mode' });
  const schedModeField = add(F.field({ key: 'schedule_mode', label: 'Schedule', control: schedMode }), 'schedule');
  const every = add(F.field({ key: 'every', label: 'Interval', control: F.textInput({ id: 'f-every', value: '1h' }),
    help: 'A duration: 90, 30s, 5m, 2h, 1d or 1h30m.', check: (t) => (schedMode.value !== 'every' ? null : F.scheduleProblem(`every ${t}`)) }), 'schedule');
  const cron = add(F.field({ key: 'cron', label: 'Cron expression', control: F.textInput({ id: 'f-cron', placeholder: '0 3 * * *' }),
    help: 'MIN HOUR DAY MONTH WEEKDAY, or @daily, @hourly…', check: (t) => (schedMode.value !== 'cron' ? null : F.scheduleProblem(`cron ${t}`)) }), 'schedule');
  const tz = add(F.field({ key: 'timezone', label: 'Time zone', control: F.textInput({ id: 'f-timezone', placeholder: 'UTC' }),
    help: 'An IANA name such as Europe/Paris; cron times are read in it.', check: (t) => (!t || /^[A-Za-z0-9_+\-]+(\/[A-Za-z0-9_+\-]+)*$/.test(t) ? null : 'an IANA zone name such as Asia/Shanghai') }), 'schedule');
  const drawSchedule = () => { every.el.hidden = schedMode.value !== 'every'; cron.el.hidden = schedMode.value !== 'cron'; tz.el.hidden = schedMode.value !== 'cron'; };
  schedMode.addEventListener('change', drawSchedule);
  const enabled = add(F.field({ key: 'enabled', label: 'Start the task when it is created', control: F.checkbox({ id: 'f-enabled', checked: true }) }), 'schedule');
  const evMode = F.select([['none', 'None: only the schedule'], ['webhook', 'Webhook (S3 notifications, registry pushes)'],
    ['sqs', 'An SQS queue of S3 notifications'], ['inotify', 'Changes in the local directory (inotify)']], { id: 'f-events' });
  const events = add(F.field({ key: 'events', label: 'Change events', control: evMode,
    help: 'Events copy a changed object within seconds; the schedule still rescans.' }), 'schedule');
  const queue = add(F.field({ key: 'queue', label: 'Queue URL', control: F.textInput({ id: 'f-queue', placeholder: 'https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE' }),
    check: (t) => (evMode.value !== 'sqs' ? null : /^https?:\/\/\S+$/.test(t) ? null : 'the queue\'s URL') }), 'schedule');
  evMode.addEventListener('change', () => { queue.el.hidden = evMode.value !== 'sqs'; });
  const notify = add(F.field({ key: 'notify', label: 'Notifications (optional)', control: F.textarea({ id: 'f-notify', placeholder: 'webhook:https://hooks.example/dth\nsns:arn:aws:sns:REGION:ACCOUNT:TOPIC' }),
    help: 'One per line: webhook:URL or sns:TOPIC_ARN. Sent when a run finishes or fails, or objects fail.',
    check: (t) => F.lines(t).map((l) => (/^(webhook:https?:\/\/\S+|sns:arn:\S+)$/.test(l) ? null : `"${l.slice(0, 40)}" is not webhook:URL or sns:ARN`)).find(Boolean) || null }), 'schedule');
  const notifyRemote = add(F.field({ key: 'notify_remote', label: 'Remote that signs SNS calls (optional)',
    control: F.select([['', 'the destination\'s'], ...remotes.filter((r) => r.type === 's3').map((r) => [r.name, r.name])], { id: 'f-notify-remote' }) }), 'schedule');

  // ---- advanced: every other setting of the table, drawn from its type
  const advanced = { s3: [], image: [] };
  for (const s of schema.settings) {
    if (HAND_DRAWN.has(s.name) || s.required) continue;
    for (const k of s.kinds) {
      const f = F.settingField(s, k);
      f.control.id = `f-${k}-${s.name}`;
      f.step = 'advanced';
      advanced[k].push(f);
    }
  }

  // ---- the definition the fields make
  const advancedOf = () => advanced[kind()];
  const build = () => {
    const k = kind();
    const d = { name: name.text(), type: k };
    if (k === 's3') {
      d.source = provider.value === 'local' ? srcPath.text()
        : `${srcRemote.text()}:${srcBucket.text()}${srcPrefix.text() ? `/${srcPrefix.text()}` : ''}`;
      d.destination = `${dstRemote.text()}:${dstBucket.text()}${dstPrefix.text() ? `/${dstPrefix.text()}` : ''}`;
      if (provider.value !== 'local' && rp.control.checked) d.requester_pays = true;
      if (!metadata.control.checked) d.metadata = false;
      if (storage.text()) d.storage_class = storage.text();
      if (acl.text()) d.acl = acl.text();
      if (sse.text()) d.sse = sse.text();
      if (sse.text() === 'aws:kms' && kms.text()) d.sse_kms_key_id = kms.text();
      if (F.lines(include.control.value).length) d.include = F.lines(include.control.value);
      if (F.lines(exclude.control.value).length) d.exclude = F.lines(exclude.control.value);
      if (del.control.checked) {
        d.delete = true;
        if (maxDel.text()) d.max_delete = maxDel.text();
      }
    } else {
      d.source = `${imgRemote.text()}:`;
      d.destination = `${dstRemote.text()}:${dstPrefix.text()}`;
      if (allImg.control.checked) d.all = true;
      else d.images = F.lines(images.control.value);
      if (tags.text()) d.tags = tags.text();
      if (platform.text()) d.platform = platform.text();
    }
    d.schedule = schedMode.value === 'once' ? 'once' : schedMode.value === 'every' ? `every ${every.text()}` : `cron "${cron.text()}"`;
    if (schedMode.value === 'cron' && tz.text()) d.timezone = tz.text();
    if (!enabled.control.checked) d.enabled = false;
    if (evMode.value === 'webhook' || evMode.value === 'inotify') d.events = evMode.value;
    if (evMode.value === 'sqs') d.events = `sqs:${queue.text()}`;
    if (F.lines(notify.control.value).length) d.notify = F.lines(notify.control.value);
    if (notifyRemote.text()) d.notify_remote = notifyRemote.text();
    for (const f of advancedOf()) {
      const v = f.value();
      if (v !== undefined && !(Array.isArray(v) && !v.length)) d[f.key] = v;
    }
    return d;
  };

  // ---- steps
  const STEP_TITLES = { task: 'Task', source: 'Source', destination: 'Destination', options: 'Copy options',
    schedule: 'Schedule and events', advanced: 'Advanced', review: 'Review' };
  const stepsOf = () => (kind() === 's3' ? ['task', 'source', 'destination', 'options', 'schedule', 'advanced', 'review']
    : ['task', 'source', 'destination', 'schedule', 'advanced', 'review']);
  const review = h('div', { id: 'review' });
  const advBox = h('div', { class: 'fields' });
  const drawAdvanced = () => fill(advBox, advancedOf().map((f) => f.el));
  const panels = {
    task: [h('fieldset', { class: 'kind' }, h('legend', {}, 'What does it copy?'),
      h('div', { class: 'check' }, kindS3, h('label', { for: 'kind-s3' }, 'Objects: S3 and S3-compatible buckets, or a local directory')),
      h('div', { class: 'check' }, kindImg, h('label', { for: 'kind-image' }, 'Container images: registry to registry'))), name.el],
    source: [providerField.el, srcRemote.el, srcBucket.el, srcPrefix.el, rpNote, rp.el, srcPath.el,
      regKindField.el, imgRemote.el, allImg.el, images.el, tags.el, platform.el],
    destination: [dstRemote.el, dstBucket.el, dstPrefix.el],
    options: [metadata.el, storage.el, h('datalist', { id: 'storage-classes' }, STORAGE_CLASSES.map((c) => h('option', { value: c }))),
      acl.el, sse.el, kms.el, include.el, exclude.el, del.el, delWarn, maxDel.el],
    schedule: [schedModeField.el, every.el, cron.el, tz.el, enabled.el, events.el, queue.el, notify.el, notifyRemote.el],
    advanced: [h('p', { class: 'help' }, 'Leave a field empty to keep the agent\'s default.'), advBox],
    review: [h('p', {}, 'Nothing is created until you press "Create task".'), review],
  };
  const drawKind = () => {
    const s3 = kind() === 's3';
    for (const f of [providerField, srcRemote, srcBucket, srcPrefix, rp]) f.el.hidden = !s3;
    rpNote.hidden = !s3;
    for (const f of [regKindField, imgRemote, allImg, images, tags, platform]) f.el.hidden = s3;
    if (s3) drawSource(); else { srcPath.el.hidden = true; drawRegistries(); images.el.hidden = allImg.control.checked; }
    evMode.querySelector('option[value="inotify"]').hidden = !s3;
    drawDestination();
    drawAdvanced();
  };
  kindS3.addEventListener('change', drawKind);
  kindImg.addEventListener('change', drawKind);

  let step = 0;
  const stepList = h('ol', { class: 'steps', 'aria-label': 'Steps' });
  const panelBox = h('div', { class: 'fields' });
  const stepTitle = h('h2', { tabindex: '-1', id: 'step-title' });
  const formError = h('p', { class: 'field-error', role: 'alert', id: 'form-error' });
  const back = h('button', { type: 'button', id: 'wiz-back' }, 'Back');
  const next = h('button', { type: 'submit', class: 'primary', id: 'wiz-next' }, 'Next');
  const visibleFields = (stepName) => Object.values(fields).concat(advancedOf())
    .filter((f) => f.step === stepName && !f.el.hidden && f.el.isConnected);

  const drawStep = (focus) => {
    const steps = stepsOf();
    const cur = steps[step];
    fill(stepList, steps.map((s, i) => h('li', { 'aria-current': i === step ? 'step' : undefined,
      class: i < step ? 'done' : undefined }, STEP_TITLES[s])));
    fill(stepTitle, `Step ${step + 1} of ${steps.length}: ${STEP_TITLES[cur]}`);
    fill(panelBox, panels[cur]);
    fill(formError);
    back.disabled = step === 0;
    fill(next, cur === 'review' ? 'Create task' : 'Next');
    if (cur === 'review') drawReview();
    if (focus) stepTitle.focus();
  };

  // The agent's dry run: its refusal shown by the field it names, when that
  // field is on this step or an earlier one.
  let checkSeq = 0;
  const fieldFor = (apiField) => {
    if (!apiField) return null;
    if (apiField === 'source') return kind() === 'image' ? imgRemote : provider.value === 'local' ? srcPath : srcBucket;
    if (apiField === 'destination') return kind() === 's3' ? dstBucket : dstPrefix;
    if (apiField === 'schedule') return schedMode.value === 'cron' ? cron : every;
    if (apiField === 'images' || apiField === 'all') return images;
    if (apiField === 'max_delete_percent') return maxDel;
    return fields[apiField] || advancedOf().find((f) => f.key === apiField) || null;
  };
  const serverCheck = async () => {
    const seq = ++checkSeq;
    let problem = null;
    try {
      await api.tasks.check(build());
    } catch (e) {
      if (e.status === 401 || e.status === 0) return null;
      problem = e;
    }
    if (seq !== checkSeq) return null;
    for (const f of Object.values(fields).concat(advancedOf())) if (f.serverError) { f.serverError = false; f.validate(); }
    if (!problem) return null;
    const steps = stepsOf();
    const f = fieldFor(problem.field);
    const at = f ? steps.indexOf(f.step) : -1;
    if (f && at >= 0 && at <= step && !f.el.hidden) {
      if (!f.problem()) { f.setError(problem.message); f.serverError = true; }
    }
    return { problem, field: f, at };
  };
  let timer = null;
  const form = h('form', { id: 'wizard', novalidate: true, class: 'card' }, stepTitle, panelBox, formError,
    h('div', { class: 'actions' }, next, back));
  form.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(serverCheck, 400); });
  form.addEventListener('change', () => { clearTimeout(timer); timer = setTimeout(serverCheck, 400); });

  const drawReview = () => {
    const d = build();
    const rows = Object.entries(d).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k),
      h('td', {}, Array.isArray(v) ? v.join(', ') : String(v))));
    fill(review, tableWrap('The task as it will be sent', h('table', { class: 'data', id: 'review-table' },
      h('caption', {}, `The task ${d.name} as it will be sent to the agent (settings not shown keep their defaults)`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Setting'), h('th', { scope: 'col' }, 'Value'))),
      h('tbody', {}, rows))),
    d.delete ? h('p', { class: 'warning' }, 'This task deletes objects at the destination that the source does not have.') : null);
  };
  const goStep = (i) => { step = i; drawStep(true); };
  back.addEventListener('click', () => { if (step > 0) goStep(step - 1); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    const steps = stepsOf();
    const cur = steps[step];
    const bad = visibleFields(cur).filter((f) => !f.validate());
    if (bad.length) {
      fill(formError, `Check ${bad.length === 1 ? 'this field' : `these ${bad.length} fields`}: ${bad.map((f) => f.el.querySelector('label').textContent).join(', ')}.`);
      bad[0].control.focus();
      return;
    }
    if (cur !== 'review') {
      const r = await serverCheck();
      if (r && r.field && r.at >= 0 && r.at <= step && !r.field.el.hidden) {
        if (r.at < step) goStep(r.at);
        fill(formError, r.problem.message);
        r.field.control.focus();
        return;
      }
      goStep(step + 1);
      return;
    }
    next.disabled = true;
    try {
      const made = await api.tasks.create(build());
      toast(`Task ${made.name} created.`);
      location.hash = `#/tasks/${api.enc(made.name)}`;
    } catch (e) {
      next.disabled = false;
      const f = fieldFor(e.field);
      const at = f ? steps.indexOf(f.step) : -1;
      if (f && at >= 0) {
        goStep(at);
        f.setError(e.message);
        f.control.focus();
      }
      fill(formError, `The agent refused the task: ${e.message}`);
    }
  });

  // ---- a clone starts from another task's definition
  if (base) fillFrom(base.definition);
  function fillFrom(d) {
    (d.type === 'image' ? kindImg : kindS3).checked = true;
    kindS3.checked = d.type !== 'image';
    name.control.value = `${d.name}-copy`;
    if (d.type === 's3') {
      if ((d.source || '').startsWith('/')) { provider.value = 'local'; srcPath.control.value = d.source; } else {
        const s = splitS3(d.source);
        const r = s3Remotes.find((x) => x.name === s.remote);
        provider.value = r ? providerOf(r) : 'compat';
        drawSource();
        srcRemote.control.value = s.remote;
        srcBucket.control.value = s.bucket;
        srcPrefix.control.value = s.prefix;
        rp.control.checked = !!d.requester_pays;
      }
      metadata.control.checked = d.metadata !== false;
      storage.control.value = d.storage_class || '';
      acl.control.value = d.acl || '';
      sse.control.value = d.sse || '';
      kms.control.value = d.sse_kms_key_id || '';
      include.control.value = (d.include || []).join('\n');
      exclude.control.value = (d.exclude || []).join('\n');
      del.control.checked = !!d.delete;
      maxDel.control.value = d.max_delete ?? '';
    } else {
      regKind.value = 'any';
      drawRegistries();
      imgRemote.control.value = (d.source || '').replace(/:.*$/, '');
      allImg.control.checked = !!d.all;
      images.control.value = (d.images || []).join('\n');
      tags.control.value = d.tags || '';
      platform.control.value = d.platform || '';
    }
    const dst = splitS3(d.destination);
    drawDestination();
    dstRemote.control.value = dst.remote;
    if (d.type === 's3') { dstBucket.control.value = dst.bucket; dstPrefix.control.value = dst.prefix; } else dstPrefix.control.value = (d.destination || '').replace(/^[^:]*:/, '');
    const sch = (d.schedule || 'every 1h').trim();
    if (/^once$/i.test(sch)) schedMode.value = 'once';
    else if (/^every\s+/i.test(sch)) { schedMode.value = 'every'; every.control.value = sch.replace(/^every\s+/i, ''); } else { schedMode.value = 'cron'; cron.control.value = sch.replace(/^cron\s+/i, '').replace(/^["']|["']$/g, ''); }
    tz.control.value = d.timezone || '';
    enabled.control.checked = d.enabled !== false;
    const ev = d.events || 'none';
    evMode.value = ev.startsWith('sqs:') ? 'sqs' : ev;
    queue.control.value = ev.startsWith('sqs:') ? ev.slice(4) : '';
    notify.control.value = (d.notify || []).join('\n');
    notifyRemote.control.value = d.notify_remote || '';
    for (const f of advanced[d.type === 'image' ? 'image' : 's3']) f.set(d[f.key]);
  }
  // A sensible first choice: the provider of the first S3 remote.
  if (!base && s3Remotes.length) provider.value = providerOf(s3Remotes[0]);

  fill(main, h('p', { class: 'crumbs' }, h('a', { href: '#/tasks' }, 'Tasks'), ' / ', base ? `Clone of ${base.name}` : 'New task'),
    h('h1', { tabindex: '-1' }, base ? `Clone task ${base.name}` : 'New task'),
    h('nav', { 'aria-label': 'Wizard progress' }, stepList), form);
  drawKind();
  drawSse();
  drawDelete();
  drawSchedule();
  queue.el.hidden = evMode.value !== 'sqs';
  drawStep(false);
  return { destroy: () => clearTimeout(timer) };
}
