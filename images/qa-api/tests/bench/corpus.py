"""A small bilingual corpus of operations manuals and questions whose answers are exact strings.

Each question names the file its answer is in; a retrieved chunk "answers" it when it
comes from that file and contains the exact answer string.
"""

import os

DOCS = {
    "zh/nginx.md": """# Nginx 网关运维手册

## 配置文件
网关的主配置文件位于 /etc/nginx/nginx.conf，站点配置放在 /etc/nginx/conf.d/ 目录下。修改配置之后，必须先执行 nginx -t 检查语法，确认无误后再执行 nginx -s reload 平滑重载，不要直接重启容器。

## 限流
每个接口密钥的默认限流为每秒二十个请求，突发上限为四十个。超过限流的请求会收到 429 状态码。限流区域的名称是 qa_keys，共享内存大小为 10m。

## 日志
访问日志采用 JSON 格式，写入 /var/log/nginx/access.json。日志每天轮转一次，保留十四天，压缩后归档到对象存储。
""",
    "zh/backup.md": """# 数据备份与恢复

## 备份策略
生产数据库每天凌晨两点进行全量备份，每小时进行一次增量备份。备份文件保存在异地机房，保留期限为九十天。备份任务由定时器 pg-backup.timer 触发。

## 恢复演练
恢复演练每季度进行一次，由运维部负责组织。演练时使用命令 pgbackrest restore --delta 将数据恢复到隔离环境，恢复时间目标为四小时。

## 告警
备份失败时，监控系统会向值班手机发送短信，并在企业微信的运维告警群中通知。连续两次失败需要升级到运维经理。
""",
    "zh/security.md": """# 信息安全管理制度

## 密码
所有账户的密码长度不得少于十四个字符，必须包含大小写字母、数字和特殊符号，每一百八十天更换一次。禁止在多个系统中使用相同的密码。

## 访问控制
远程访问内部系统必须通过公司堡垒机，堡垒机地址为 jump.intra.example.cn，会话录像保存一年。外包人员的账号有效期最长为三十天。

## 事件报告
发现钓鱼邮件或可疑登录时，应在一小时内报告信息安全部，报告邮箱为 soc@example.cn。
""",
    "zh/expenses.txt": """差旅报销制度。员工出差产生的交通费用可以全额报销，发票必须在出差结束后三十天内提交给财务部。住宿标准为每晚不超过五百元；超过标准的部分由员工自行承担。

餐饮补贴为每天一百元，无需提供发票。出差前需要在 OA 系统中提交申请并获得部门经理批准。

因公出国的人员，应在回国后十五个工作日内办理报销手续，外币按出发当日的中国银行汇率折算。
""",
    "en/deploy.md": """# Deployment guide

## Releases
A release is started with ansible-playbook playbooks/deploy.yml. The idle color is brought up first
and must report the expected KB checksum on /health before any traffic is switched.

## Canary
Canary steps default to 5, 25, 50 and 100 percent. Each step waits for the observe window, 300 seconds by default, and checks the error rate and p99 latency.

## Rollback
Run playbooks/rollback.yml to switch back to the previous color in seconds. The previous color is kept running for a grace period of 30 minutes.
""",
    "en/qa-api.md": """# qa-api settings

## Retrieval
QA_RETRIEVAL_MODE selects hybrid, dense or lexical retrieval. QA_TOP_K is the number of passages retrieved per question, 4 unless set.

## Cache
Answers are cached in Redis for QA_CACHE_TTL seconds, 3600 by default. Send the header X-QA-Cache: bypass to skip the cache for one request.

## Shutdown
On SIGTERM the readiness endpoint answers 503, in-flight requests finish, and the process exits after at most QA_DRAIN_TIMEOUT seconds.
""",
    "en/storage.md": """# Storage operations

## Disks
Model files live under /srv/models and knowledge bases under /srv/kb. Keep at least 20 GB free on the data volume; the disk alert fires at 85 percent usage.

## Cleanup
Old knowledge base versions are removed by the retention job, which keeps the last 5 versions plus every version a color uses.
Docker images are pruned with the label llmops.retain=false only.
""",
}

# (question, file, exact answer string, language)
QUESTIONS = [
    ("网关的主配置文件在哪里？", "zh/nginx.md", "/etc/nginx/nginx.conf", "zh"),
    ("修改配置后用什么命令检查语法？", "zh/nginx.md", "nginx -t", "zh"),
    ("限流区域叫什么名字？", "zh/nginx.md", "qa_keys", "zh"),
    ("访问日志保留多少天？", "zh/nginx.md", "保留十四天", "zh"),
    ("备份文件保留多久？", "zh/backup.md", "九十天", "zh"),
    ("备份任务由哪个定时器触发？", "zh/backup.md", "pg-backup.timer", "zh"),
    ("恢复演练用什么命令恢复数据？", "zh/backup.md", "pgbackrest restore --delta", "zh"),
    ("恢复时间目标是多少？", "zh/backup.md", "四小时", "zh"),
    ("密码最少要多少个字符？", "zh/security.md", "十四个字符", "zh"),
    ("堡垒机的地址是什么？", "zh/security.md", "jump.intra.example.cn", "zh"),
    ("外包人员账号有效期最长多久？", "zh/security.md", "三十天", "zh"),
    ("发票必须在多长时间内提交？", "zh/expenses.txt", "三十天内", "zh"),
    ("餐饮补贴每天多少钱？", "zh/expenses.txt", "一百元", "zh"),
    ("How is a release started?", "en/deploy.md", "playbooks/deploy.yml", "en"),
    ("What are the default canary steps?", "en/deploy.md", "5, 25, 50 and 100", "en"),
    ("How long is the previous color kept running?", "en/deploy.md", "30 minutes", "en"),
    ("Which setting selects hybrid or dense retrieval?", "en/qa-api.md", "QA_RETRIEVAL_MODE", "en"),
    ("How do I skip the cache for one request?", "en/qa-api.md", "X-QA-Cache: bypass", "en"),
    ("What is the QA_CACHE_TTL default?", "en/qa-api.md", "3600", "en"),
    ("Where are model files stored?", "en/storage.md", "/srv/models", "en"),
    ("At what usage does the disk alert fire?", "en/storage.md", "85 percent", "en"),
    ("How many knowledge base versions does retention keep?", "en/storage.md", "last 5 versions", "en"),
]


def write_corpus(root):
    for rel, text in DOCS.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return root


def answers(chunk, question):
    """Does this retrieved chunk hold the question's answer?"""
    _text, source, answer, _lang = question
    return chunk["source"] == source and answer in chunk["text"]


def recall_at(retrieve, questions=None, k=5):
    """Share of questions (default: QUESTIONS) whose answer passage is in the top k of retrieve(question, k)."""
    questions = QUESTIONS if questions is None else questions
    found = sum(1 for q in questions if any(answers(h, q) for h in retrieve(q[0], k)))
    return found / len(questions) if questions else 0.0
