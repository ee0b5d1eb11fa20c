// All console text, in English and Korean (same keys in both). t(key,
// …args) fills {0}, {1}… with args. The language defaults to the
// browser's and is kept in localStorage.

const en = {
  'nav.label': 'Sections', 'nav.menu': 'Menu',
  'nav.overview': 'Overview', 'nav.incidents': 'Incidents', 'nav.problems': 'Problems', 'nav.sla': 'SLA',
  'nav.kpis': 'KPIs', 'nav.explore': 'Explore', 'nav.rules': 'Rules', 'nav.wall': 'Wall screen',
  'wall.enter': 'Wall mode', 'wall.help': 'For the operations room: overview, incidents and KPIs in turn, in large type, without navigation (Esc leaves)',
  'wall.exit': 'Exit (Esc)', 'wall.exitHelp': 'Leave wall mode for the overview', 'wall.rotation': 'Pages shown in turn, every {0} s',
  'tenant.label': 'Tenant', 'tenant.help': 'Sent as X-Scope-OrgID; empty: your default tenant',
  'lang.other': '한국어', 'lang.help': '한국어로 보기',
  'theme.light': 'Light', 'theme.dark': 'Dark', 'theme.help': 'Switch between the dark and the light theme',
  'auth.title': 'Sign in', 'auth.help': 'This tsdb needs credentials: a bearer token, or a username and password.',
  'auth.token': 'Bearer token', 'auth.or': '— or —', 'auth.user': 'Username', 'auth.password': 'Password',
  'auth.signin': 'Sign in', 'auth.signout': 'Sign out', 'auth.rejected': 'Sign-in refused',
  'auth.needed': 'Enter a token, or a username and password.',
  'auth.needsOperator': 'Needs the operator role',
  'err.forbidden': 'Not allowed',
  'time.now': 'just now', 'time.ago': '{0} ago', 'time.in': 'in {0}',
  'unit.d': 'd', 'unit.h': 'h', 'unit.m': 'm', 'unit.s': 's',
  'range.15m': 'Last 15 minutes', 'range.1h': 'Last hour', 'range.6h': 'Last 6 hours', 'range.24h': 'Last 24 hours',
  'range.7d': 'Last 7 days', 'range.30d': 'Last 30 days',
  'filter.all': 'All',
  'status.active': 'Active (open + acknowledged)', 'status.open': 'Open', 'status.acknowledged': 'Acknowledged',
  'status.resolved': 'Resolved', 'status.closed': 'Closed', 'status.firing': 'Firing', 'status.pending': 'Pending',
  'status.inactive': 'Inactive', 'status.ok': 'OK', 'status.error': 'Error', 'status.unknown': 'Not evaluated',
  'status.predicted_breach': 'Breach predicted', 'status.breached': 'Breached', 'status.registered': 'Registered',
  'status.root_cause_identified': 'Root cause identified', 'status.workaround': 'Workaround',
  'status.solution': 'Solution', 'status.verified': 'Verified',
  'level.high': 'high', 'level.medium': 'medium', 'level.low': 'low',
  'kind.predicted_breach': 'Predicted KPI breach', 'kind.kpi_breach': 'KPI breach',
  'ev.opened': 'opened', 'ev.acknowledged': 'acknowledged', 'ev.resolved': 'resolved', 'ev.closed': 'closed',
  'ev.assigned': 'assigned', 'ev.comment': 'comment', 'ev.priority changed': 'priority changed',
  'ev.linked change request': 'change linked', 'ev.closed change request': 'change closed', 'ev.escalated': 'escalated',
  'ev.sla breached': 'SLA breached', 'ev.reopened': 'reopened', 'ev.flapping': 'flapping', 'ev.alert firing': 'alert firing',
  'ev.alert resolved': 'alert resolved', 'ev.propagated': 'notified', 'ev.linked to problem': 'linked to problem',
  'ev.updated': 'updated',
  'proto.remote_write': 'Remote write', 'proto.influx': 'InfluxDB line protocol', 'proto.prometheus_import': 'Prometheus import',
  'proto.mqtt': 'MQTT', 'proto.snmp': 'SNMP', 'proto.otlp': 'OTLP', 'proto.jsonl': 'JSON lines',
  // overview
  'ov.incidents': 'Open incidents', 'ov.sla': 'SLA breaches', 'ov.alerts': 'Firing alerts', 'ov.kpis': 'KPIs at risk',
  'ov.ingest': 'Ingest', 'ov.sources': 'Ingest sources', 'ov.updated': 'Updated {0} · every 10 s',
  'ov.unacked': '{0} unacked', 'ov.openTotal': '{0} open or acknowledged incidents',
  'ov.breaches': 'open incidents past an SLA target', 'ov.breachedClock': 'Breached', 'ov.noBreaches': 'No open incident is past its SLA.',
  'ov.firing': 'firing', 'ov.pending': 'pending', 'ov.noAlerts': 'No alert is firing.', 'ov.more': '{0} more…',
  'ov.kpisAtRisk': 'of {0} KPIs at risk', 'ov.kpisOk': 'All KPIs are on track.',
  'ov.rate': 'Ingest rate', 'ov.perSecond': 'samples / second (last minute)', 'ov.series': 'Active series',
  'ov.tenant': 'tenant {0}', 'ov.protocol': 'Protocol', 'ov.samplesPerSec': 'Samples/s', 'ov.samplesTotal': 'Samples since start',
  'ov.noIngest': 'Nothing ingested since start.', 'ov.uptime': 'Up for {0}',
  'ov.sourcesUp': 'All {0} sources up', 'ov.sourcesDown': '{0} of {1} sources down', 'ov.noSources': 'No SNMP, MQTT or remote-write source yet.',
  'src.state': 'State', 'src.name': 'Source', 'src.lastSeen': 'Last seen', 'src.requests': 'Requests',
  'src.failures': 'Failures', 'src.lastCode': 'Last code', 'src.reason': 'Why down', 'src.up': 'up', 'src.down': 'down',
  // alerts and rules
  'alert.name': 'Alert', 'alert.severity': 'Severity', 'alert.labels': 'Labels', 'alert.since': 'Since',
  'alert.state': 'State', 'alert.summary': 'Summary', 'alert.value': 'Value',
  'rules.active': 'Firing and pending alerts', 'rules.summary': '{0} groups, {1} rules, {2} with errors',
  'rules.none': 'No rule groups are loaded.', 'rules.groupMeta': '{0} · every {1} · last evaluated {2} · took {3}',
  'rules.name': 'Rule', 'rules.health': 'Health', 'rules.query': 'Expression', 'rules.lastEval': 'Last evaluation',
  'rules.evalTime': 'Evaluation time', 'rules.alert': 'alert', 'rules.record': 'record', 'rules.for': 'for {0}',
  // incidents
  'inc.id': 'ID', 'inc.priority': 'Priority', 'inc.status': 'Status', 'inc.title': 'Title', 'inc.ci': 'CI',
  'inc.owner': 'Owner group', 'inc.assignee': 'Assignee', 'inc.opened': 'Opened', 'inc.sla': 'SLA',
  'inc.count': '{0} incidents', 'inc.none': 'No incidents match.', 'inc.flapping': 'flapping', 'inc.reopened': 'reopened ×{0}',
  'inc.report': 'Printable report', 'inc.facts': 'Details', 'inc.slaClocks': 'SLA clocks', 'inc.timeline': 'Timeline',
  'inc.alerts': 'Alerts', 'inc.causes': 'Probable causes', 'inc.noCauses': 'No alert fired on the linked CIs shortly before.',
  'inc.details': 'Forecast details', 'inc.kpiChart': 'KPI {0}: history and forecast', 'inc.urgency': 'urgency',
  'inc.impact': 'impact', 'inc.kind': 'Raised by', 'inc.acknowledged': 'Acknowledged', 'inc.resolved': 'Resolved',
  'inc.closed': 'Closed', 'inc.propagated': 'Notified groups', 'inc.escalated': 'Escalated to', 'inc.problem': 'Problem',
  'inc.changes': 'Change requests', 'inc.elapsed': 'Open for',
  'inc.showClosed': 'Show resolved and closed', 'inc.closedHidden': '{0} resolved or closed not shown',
  'act.ack': 'Acknowledge', 'act.assign': 'Assign', 'act.comment': 'Comment', 'act.resolve': 'Resolve', 'act.close': 'Close',
  'act.cancel': 'Cancel', 'act.assignee': 'Assign to', 'act.assigneeHint': 'user name', 'act.commentText': 'Comment',
  'act.commentHint': 'what was seen or done',
  'act.priority': 'Change priority', 'act.reason': 'Reason', 'act.reasonHint': 'why the priority changes',
  'act.new': 'New incident', 'act.create': 'Open incident', 'inc.titleField': 'Title', 'inc.titleHint': 'what is wrong',
  'inc.defaultPriority': 'from CI and urgency',
  'tl.when': 'When', 'tl.who': 'Who', 'tl.what': 'What', 'tl.detail': 'Detail',
  'cause.score': 'Score', 'cause.fired': 'Fired',
  'sla.ack': 'Time to acknowledge', 'sla.resolve': 'Time to resolve', 'sla.noTarget': 'no target for this priority',
  'sla.target': 'target {0}', 'sla.doneIn': 'done in {0}, within target', 'sla.doneLate': 'done in {0}, past target',
  'sla.breachedBy': 'breached {0} ago', 'sla.never': 'not done before the incident was resolved',
  'sla.neverLate': 'not done; {0} over target when resolved', 'sla.remaining': '{0} left', 'sla.elapsed': 'Elapsed: {0}',
  'sla.breached': 'breached', 'sla.ok': 'on time',
  // problems
  'prb.none': 'No problems: incidents have not recurred.', 'prb.id': 'ID', 'prb.status': 'Status',
  'prb.incidents': 'Incidents', 'prb.about': '{0} on {1}', 'prb.openedAt': 'registered {0}',
  'prb.text': 'Note', 'prb.textHint': 'root cause, workaround or solution (optional)',
  'prb.root_cause': 'Root cause found', 'prb.workaround': 'Workaround', 'prb.solution': 'Solution', 'prb.verify': 'Verify',
  'prb.close': 'Close',
  // SLA report
  'sla.from': 'From', 'sla.to': 'To', 'sla.apply': 'Show', 'sla.printable': 'Printable report',
  'sla.badRange': 'From and to must be dates as YYYY-MM-DD HH:MM (24-hour), from before to.', 'sla.dateHint': 'YYYY-MM-DD HH:MM', 'sla.period': '{0} – {1}: {2} incidents opened',
  'sla.byPriority': 'By priority', 'sla.incidents': 'Incidents', 'sla.mtta': 'MTTA (mean time to acknowledge)',
  'sla.mttr': 'MTTR (mean time to resolve)', 'sla.compliance': 'SLA compliance', 'sla.topCis': 'CIs with the most incidents',
  'sla.none': 'No incidents in this period.',
  // KPIs
  'kpi.none': 'No KPIs are configured for this tenant.', 'kpi.notYet': 'not evaluated yet', 'kpi.failing': 'evaluation fails', 'kpi.failingSince': 'Evaluations fail since {0} ({1} times): {2}', 'kpi.name': 'KPI',
  'kpi.state': 'State', 'kpi.value': 'Value', 'kpi.target': 'Target', 'kpi.probability': 'Breach probability',
  'kpi.timeToBreach': 'Time to breach', 'kpi.now': 'now', 'kpi.horizon': 'Horizon', 'kpi.model': 'Model',
  'kpi.evaluated': 'Evaluated', 'kpi.evaluatedAgo': 'evaluated {0}', 'kpi.expr': 'Expression', 'kpi.within': 'within {0}',
  'kpi.chart': 'History and forecast', 'kpi.forecast': 'Forecast', 'kpi.band80': '80% interval', 'kpi.band95': '95% interval',
  'kpi.etaRange': 'ETA (80% range)', 'kpi.nowMark': 'now',
  'kpi.etaText': 'Expected breach {0} (between {1} and {2}).', 'kpi.incident': 'Incident:', 'kpi.definition': 'Definition',
  'kpi.step': 'Step', 'kpi.history': 'History', 'kpi.interval': 'Interval', 'kpi.seasonality': 'Seasonality',
  'kpi.warnAt': 'Warn at probability', 'kpi.labels': 'Labels', 'kpi.impact': 'Impact', 'kpi.scores': 'Models (backtest)',
  // explore
  'ex.query': 'Query', 'ex.placeholder': 'MetricsQL or PromQL, e.g. rate(http_requests_total[5m]) — Enter runs, Shift+Enter for a new line',
  'ex.range': 'Range', 'ex.run': 'Run', 'ex.graph': 'Graph', 'ex.table': 'Instant result', 'ex.cardinality': 'Cardinality',
  'ex.enter': 'Enter a query.', 'ex.noData': 'No data.', 'ex.capped': 'Showing {0} of {1} series.',
  'ex.series': 'Series', 'ex.value': 'Value', 'ex.time': 'Time', 'ex.samples': 'Samples', 'ex.last': 'Last',
  'ex.totals': '{0} series, {1} label pairs', 'ex.byMetric': 'Series by metric', 'ex.byLabel': 'Values by label',
  'ex.byPair': 'Series by label pair', 'ex.byMemory': 'Bytes of values by label', 'ex.metric': 'Metric', 'ex.label': 'Label',
  'ex.pair': 'Label pair', 'ex.values': 'Values', 'ex.bytes': 'Bytes', 'ex.share': 'Share of the largest',
};

const ko = {
  'nav.label': '메뉴', 'nav.menu': '메뉴',
  'nav.overview': '개요', 'nav.incidents': '인시던트', 'nav.problems': '문제 관리', 'nav.sla': '서비스 수준(SLA)',
  'nav.kpis': 'KPI', 'nav.explore': '탐색', 'nav.rules': '규칙', 'nav.wall': '상황판',
  'wall.enter': '상황판 모드', 'wall.help': '관제실용: 개요, 인시던트, KPI를 큰 글씨로 차례로 표시하며 메뉴는 숨깁니다 (Esc로 나가기)',
  'wall.exit': '나가기 (Esc)', 'wall.exitHelp': '상황판 모드를 끝내고 개요로 이동', 'wall.rotation': '{0}초마다 차례로 표시되는 페이지',
  'tenant.label': '테넌트', 'tenant.help': 'X-Scope-OrgID로 전송됩니다. 비워 두면 기본 테넌트',
  'lang.other': 'English', 'lang.help': 'View in English',
  'theme.light': '밝은 화면', 'theme.dark': '어두운 화면', 'theme.help': '어두운 테마와 밝은 테마 전환',
  'auth.title': '로그인', 'auth.help': '이 tsdb는 인증이 필요합니다. 베어러 토큰 또는 사용자 이름과 비밀번호를 입력하세요.',
  'auth.token': '베어러 토큰', 'auth.or': '— 또는 —', 'auth.user': '사용자 이름', 'auth.password': '비밀번호',
  'auth.signin': '로그인', 'auth.signout': '로그아웃', 'auth.rejected': '로그인 거부됨',
  'auth.needed': '토큰 또는 사용자 이름과 비밀번호를 입력하세요.',
  'auth.needsOperator': '운영자(operator) 권한이 필요합니다',
  'err.forbidden': '권한 없음',
  'time.now': '방금', 'time.ago': '{0} 전', 'time.in': '{0} 후',
  'unit.d': '일', 'unit.h': '시간', 'unit.m': '분', 'unit.s': '초',
  'range.15m': '최근 15분', 'range.1h': '최근 1시간', 'range.6h': '최근 6시간', 'range.24h': '최근 24시간',
  'range.7d': '최근 7일', 'range.30d': '최근 30일',
  'filter.all': '전체',
  'status.active': '진행 중 (신규 + 확인)', 'status.open': '신규', 'status.acknowledged': '확인',
  'status.resolved': '해결', 'status.closed': '종료', 'status.firing': '발생', 'status.pending': '대기',
  'status.inactive': '비활성', 'status.ok': '정상', 'status.error': '오류', 'status.unknown': '미평가',
  'status.predicted_breach': '위반 예측', 'status.breached': '위반', 'status.registered': '등록',
  'status.root_cause_identified': '근본 원인 파악', 'status.workaround': '임시 조치',
  'status.solution': '해결책', 'status.verified': '검증 완료',
  'level.high': '높음', 'level.medium': '중간', 'level.low': '낮음',
  'kind.predicted_breach': 'KPI 위반 예측', 'kind.kpi_breach': 'KPI 위반',
  'ev.opened': '발생', 'ev.acknowledged': '확인', 'ev.resolved': '해결', 'ev.closed': '종료',
  'ev.assigned': '담당자 지정', 'ev.comment': '의견', 'ev.priority changed': '우선순위 변경',
  'ev.linked change request': '변경 요청 연결', 'ev.closed change request': '변경 요청 종료', 'ev.escalated': '에스컬레이션',
  'ev.sla breached': 'SLA 위반', 'ev.reopened': '재발생', 'ev.flapping': '상태 반복 변경', 'ev.alert firing': '경보 발생',
  'ev.alert resolved': '경보 해소', 'ev.propagated': '통보', 'ev.linked to problem': '문제에 연결',
  'ev.updated': '갱신',
  'proto.remote_write': 'Remote write', 'proto.influx': 'InfluxDB 라인 프로토콜', 'proto.prometheus_import': 'Prometheus 가져오기',
  'proto.mqtt': 'MQTT', 'proto.snmp': 'SNMP', 'proto.otlp': 'OTLP', 'proto.jsonl': 'JSON lines',
  // overview
  'ov.incidents': '진행 중인 인시던트', 'ov.sla': 'SLA 위반', 'ov.alerts': '발생 중인 경보', 'ov.kpis': '위험 KPI',
  'ov.ingest': '수집', 'ov.sources': '수집 소스', 'ov.updated': '{0} 갱신 · 10초마다',
  'ov.unacked': '미확인 {0}건', 'ov.openTotal': '신규 또는 확인 상태 인시던트 {0}건',
  'ov.breaches': 'SLA 목표를 넘긴 진행 중 인시던트', 'ov.breachedClock': '위반 항목', 'ov.noBreaches': 'SLA를 넘긴 진행 중 인시던트가 없습니다.',
  'ov.firing': '발생', 'ov.pending': '대기', 'ov.noAlerts': '발생 중인 경보가 없습니다.', 'ov.more': '{0}건 더 보기…',
  'ov.kpisAtRisk': '개 위험 (전체 KPI {0}개)', 'ov.kpisOk': '모든 KPI가 목표 범위 안에 있습니다.',
  'ov.rate': '수집 속도', 'ov.perSecond': '초당 샘플 수 (최근 1분)', 'ov.series': '활성 시계열',
  'ov.tenant': '테넌트 {0}', 'ov.protocol': '프로토콜', 'ov.samplesPerSec': '초당 샘플', 'ov.samplesTotal': '시작 후 샘플 수',
  'ov.noIngest': '시작 후 수집된 데이터가 없습니다.', 'ov.uptime': '가동 시간 {0}',
  'ov.sourcesUp': '소스 {0}개 모두 정상', 'ov.sourcesDown': '소스 {1}개 중 {0}개 중단', 'ov.noSources': 'SNMP, MQTT, remote write 소스가 아직 없습니다.',
  'src.state': '상태', 'src.name': '소스', 'src.lastSeen': '마지막 수신', 'src.requests': '요청',
  'src.failures': '실패', 'src.lastCode': '마지막 코드', 'src.reason': '중단 사유', 'src.up': '정상', 'src.down': '중단',
  // alerts and rules
  'alert.name': '경보', 'alert.severity': '심각도', 'alert.labels': '레이블', 'alert.since': '시작',
  'alert.state': '상태', 'alert.summary': '요약', 'alert.value': '값',
  'rules.active': '발생 및 대기 중인 경보', 'rules.summary': '그룹 {0}개, 규칙 {1}개, 오류 {2}개',
  'rules.none': '불러온 규칙 그룹이 없습니다.', 'rules.groupMeta': '{0} · {1}마다 · 마지막 평가 {2} · 소요 {3}',
  'rules.name': '규칙', 'rules.health': '상태', 'rules.query': '표현식', 'rules.lastEval': '마지막 평가',
  'rules.evalTime': '평가 소요 시간', 'rules.alert': '경보', 'rules.record': '기록', 'rules.for': '{0} 지속 시',
  // incidents
  'inc.id': 'ID', 'inc.priority': '우선순위', 'inc.status': '상태', 'inc.title': '제목', 'inc.ci': '구성 항목(CI)',
  'inc.owner': '담당 그룹', 'inc.assignee': '담당자', 'inc.opened': '발생', 'inc.sla': 'SLA',
  'inc.count': '인시던트 {0}건', 'inc.none': '조건에 맞는 인시던트가 없습니다.', 'inc.flapping': '상태 반복', 'inc.reopened': '재발생 {0}회',
  'inc.report': '보고서 인쇄', 'inc.facts': '상세 정보', 'inc.slaClocks': 'SLA 시간', 'inc.timeline': '타임라인',
  'inc.alerts': '경보', 'inc.causes': '추정 원인', 'inc.noCauses': '직전에 연결된 CI에서 발생한 경보가 없습니다.',
  'inc.details': '예측 상세', 'inc.kpiChart': 'KPI {0}: 추이와 예측', 'inc.urgency': '긴급도',
  'inc.impact': '영향도', 'inc.kind': '발생 원인', 'inc.acknowledged': '확인 시각', 'inc.resolved': '해결 시각',
  'inc.closed': '종료 시각', 'inc.propagated': '통보 그룹', 'inc.escalated': '에스컬레이션', 'inc.problem': '문제',
  'inc.changes': '변경 요청', 'inc.elapsed': '경과 시간',
  'inc.showClosed': '해결·종료 건 표시', 'inc.closedHidden': '해결·종료 {0}건 숨김',
  'act.ack': '확인(Acknowledge)', 'act.assign': '담당자 지정', 'act.comment': '의견 추가', 'act.resolve': '해결', 'act.close': '종료',
  'act.cancel': '취소', 'act.assignee': '담당자', 'act.assigneeHint': '사용자 이름', 'act.commentText': '의견',
  'act.commentHint': '확인한 내용이나 조치 사항',
  'act.priority': '우선순위 변경', 'act.reason': '사유', 'act.reasonHint': '우선순위를 바꾸는 이유',
  'act.new': '인시던트 등록', 'act.create': '등록', 'inc.titleField': '제목', 'inc.titleHint': '발생한 문제',
  'inc.defaultPriority': 'CI와 긴급도에 따름',
  'tl.when': '시각', 'tl.who': '작업자', 'tl.what': '내용', 'tl.detail': '상세',
  'cause.score': '점수', 'cause.fired': '발생 시각',
  'sla.ack': '확인 시간', 'sla.resolve': '해결 시간', 'sla.noTarget': '이 우선순위에는 목표가 없습니다',
  'sla.target': '목표 {0}', 'sla.doneIn': '{0} 만에 완료, 목표 이내', 'sla.doneLate': '{0} 만에 완료, 목표 초과',
  'sla.breachedBy': '{0} 전에 위반', 'sla.never': '해결될 때까지 처리되지 않음',
  'sla.neverLate': '처리되지 않음, 해결 시 목표보다 {0} 초과', 'sla.remaining': '{0} 남음', 'sla.elapsed': '경과: {0}',
  'sla.breached': '위반', 'sla.ok': '정상',
  // problems
  'prb.none': '문제가 없습니다. 반복된 인시던트가 없습니다.', 'prb.id': 'ID', 'prb.status': '상태',
  'prb.incidents': '인시던트', 'prb.about': '{1}의 {0}', 'prb.openedAt': '{0} 등록',
  'prb.text': '메모', 'prb.textHint': '근본 원인, 임시 조치 또는 해결책 (선택)',
  'prb.root_cause': '근본 원인 파악', 'prb.workaround': '임시 조치', 'prb.solution': '해결책', 'prb.verify': '검증',
  'prb.close': '종료',
  // SLA report
  'sla.from': '시작', 'sla.to': '종료', 'sla.apply': '조회', 'sla.printable': '보고서 인쇄',
  'sla.badRange': '시작과 종료는 YYYY-MM-DD HH:MM (24시간제) 형식의 날짜여야 하며 시작이 종료보다 앞서야 합니다.', 'sla.dateHint': 'YYYY-MM-DD HH:MM', 'sla.period': '{0} – {1}: 인시던트 {2}건 발생',
  'sla.byPriority': '우선순위별', 'sla.incidents': '인시던트', 'sla.mtta': 'MTTA (평균 확인 시간)',
  'sla.mttr': 'MTTR (평균 해결 시간)', 'sla.compliance': 'SLA 준수율', 'sla.topCis': '인시던트가 많은 구성 항목',
  'sla.none': '이 기간에 인시던트가 없습니다.',
  // KPIs
  'kpi.none': '이 테넌트에 설정된 KPI가 없습니다.', 'kpi.notYet': '아직 평가되지 않음', 'kpi.failing': '평가 실패', 'kpi.failingSince': '{0}부터 평가 실패 ({1}회): {2}', 'kpi.name': 'KPI',
  'kpi.state': '상태', 'kpi.value': '현재 값', 'kpi.target': '목표', 'kpi.probability': '위반 확률',
  'kpi.timeToBreach': '위반까지 남은 시간', 'kpi.now': '지금', 'kpi.horizon': '예측 범위', 'kpi.model': '모델',
  'kpi.evaluated': '평가 시각', 'kpi.evaluatedAgo': '{0} 평가', 'kpi.expr': '표현식', 'kpi.within': '{0} 이내',
  'kpi.chart': '추이와 예측', 'kpi.forecast': '예측', 'kpi.band80': '80% 구간', 'kpi.band95': '95% 구간',
  'kpi.etaRange': '예상 위반 시각 (80% 범위)', 'kpi.nowMark': '현재',
  'kpi.etaText': '예상 위반 시각 {0} ({1} ~ {2} 사이).', 'kpi.incident': '인시던트:', 'kpi.definition': '정의',
  'kpi.step': '간격', 'kpi.history': '학습 기간', 'kpi.interval': '평가 주기', 'kpi.seasonality': '계절성',
  'kpi.warnAt': '경고 확률', 'kpi.labels': '레이블', 'kpi.impact': '영향', 'kpi.scores': '모델 (백테스트)',
  // explore
  'ex.query': '쿼리', 'ex.placeholder': 'MetricsQL 또는 PromQL, 예: rate(http_requests_total[5m]) — Enter 실행, Shift+Enter 줄바꿈',
  'ex.range': '기간', 'ex.run': '실행', 'ex.graph': '그래프', 'ex.table': '현재 값', 'ex.cardinality': '카디널리티',
  'ex.enter': '쿼리를 입력하세요.', 'ex.noData': '데이터가 없습니다.', 'ex.capped': '시계열 {1}개 중 {0}개를 표시합니다.',
  'ex.series': '시계열', 'ex.value': '값', 'ex.time': '시각', 'ex.samples': '샘플', 'ex.last': '마지막 값',
  'ex.totals': '시계열 {0}개, 레이블 쌍 {1}개', 'ex.byMetric': '메트릭별 시계열', 'ex.byLabel': '레이블별 값 개수',
  'ex.byPair': '레이블 쌍별 시계열', 'ex.byMemory': '레이블별 값 크기(바이트)', 'ex.metric': '메트릭', 'ex.label': '레이블',
  'ex.pair': '레이블 쌍', 'ex.values': '값 개수', 'ex.bytes': '바이트', 'ex.share': '최댓값 대비 비율',
};

export const dictionaries = { en, ko };
const LANG_KEY = 'tsdb.console.lang';

export function lang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === 'en' || saved === 'ko') return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en';
}

export function setLang(l) {
  localStorage.setItem(LANG_KEY, l);
  document.documentElement.lang = l;
}

// t returns the text for key in the current language (English, then the
// key itself, when missing), with {0}, {1}… replaced by args.
export function t(key, ...args) {
  const d = lang() === 'ko' ? ko : en;
  const text = d[key] ?? en[key] ?? key;
  return args.length ? text.replace(/\{(\d+)\}/g, (m, i) => (args[i] !== undefined ? String(args[i]) : m)) : text;
}

// tOr is t for keys built from API values (statuses, event names): the
// raw value when there is no translation.
export function tOr(key, fallback) {
  const d = lang() === 'ko' ? ko : en;
  return d[key] ?? en[key] ?? fallback;
}
