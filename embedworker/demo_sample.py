"""The demo's built-in sample: short Studify-like texts written for `embedworker demo`.

Courses, their lessons, community posts and profiles over some 25 subjects, in English, Malay and
Simplified Chinese, so that each query in QUERIES has clearly relevant and clearly irrelevant texts.
Everything here is invented: no real people, no URLs, no personal data. Courses come first, in
subject order, so even a short prefix of SAMPLE (`--sample N`) spans most of the subjects.
"""

# The Chinese texts use full-width punctuation, which RUF001 would take for look-alikes of ASCII.
# ruff: noqa: RUF001

from __future__ import annotations

SAMPLE: tuple[tuple[str, str], ...] = (
    (
        "course",
        "Introduction to Cell Biology — organelles, membranes and cell division explained for "
        "Form 4 and foundation students.",
    ),
    (
        "course",
        "Plant Biology: From Roots to Leaves — photosynthesis, transpiration and how plants grow, "
        "with simple experiments you can do at home.",
    ),
    (
        "course",
        "Introduction to Organic Chemistry — functional groups, reactions and lab safety for "
        "first-year students.",
    ),
    (
        "course",
        "Kimia SPM: Asid, Bes dan Garam — konsep pH, peneutralan dan penyediaan garam dengan "
        "contoh soalan sebenar.",
    ),
    (
        "course",
        "Physics Made Visual — forces, motion and energy taught through animations and everyday "
        "examples like braking cars and playground swings.",
    ),
    ("course", "高中物理：电与磁 — 从欧姆定律到电磁感应，配合大量练习题逐步讲解。"),
    (
        "course",
        "Additional Mathematics Crash Course — differentiation, integration and progressions for "
        "students sitting SPM this year.",
    ),
    (
        "course",
        "Matematik Tingkatan 4: Fungsi dan Persamaan Kuadratik — belajar langkah demi langkah "
        "dengan latihan dan kuiz ringkas.",
    ),
    (
        "course",
        "Statistics for the Social Sciences — descriptive statistics, hypothesis testing and "
        "regression using real survey data.",
    ),
    (
        "course",
        "Probability Without Tears — counting, conditional probability and Bayes' rule for anyone "
        "who found it confusing at school.",
    ),
    (
        "course",
        "Python for Absolute Beginners — variables, loops and functions, no prior coding "
        "experience needed.",
    ),
    ("course", "JavaScript 零基础入门 — 从变量、函数到 DOM 操作，一步步写出你的第一个互动网页。"),
    (
        "course",
        "Full-Stack Web Development Bootcamp — build and deploy a responsive site with HTML, CSS, "
        "React and Node.js.",
    ),
    (
        "course",
        "Membina Laman Web Pertama Anda — HTML dan CSS asas untuk pelajar yang ingin membuat "
        "portfolio dalam talian.",
    ),
    (
        "course",
        "Data Analysis with pandas — clean, reshape and visualise messy spreadsheets using Python "
        "notebooks.",
    ),
    (
        "course",
        "Data Science Foundations — from asking the right question to presenting insights, using "
        "Malaysian open datasets.",
    ),
    (
        "course",
        "Machine Learning A to Z — supervised learning, model evaluation and a capstone project "
        "predicting house prices.",
    ),
    ("course", "深度学习实战 — 用 PyTorch 搭建神经网络，完成图像分类和文本情感分析两个项目。"),
    (
        "course",
        "SQL for Data Analysts — SELECT, JOINs, GROUP BY and window functions practised on an "
        "e-commerce database.",
    ),
    (
        "course",
        "Database Design Fundamentals — entity-relationship diagrams, normalisation and choosing "
        "between relational and NoSQL stores.",
    ),
    (
        "course",
        "Academic English Writing — structure essays, paraphrase sources and cite correctly in "
        "university assignments.",
    ),
    (
        "course",
        "Creative Writing Workshop — short stories, poetry and personal essays, with peer "
        "feedback every week.",
    ),
    (
        "course",
        "Bahasa Melayu SPM: Karangan Cemerlang — teknik menulis karangan berfakta dan berformat "
        "untuk markah tinggi.",
    ),
    (
        "course",
        "Conversational Malay for Beginners — greetings, ordering food and everyday phrases for "
        "international students in Malaysia.",
    ),
    (
        "course",
        "Mandarin Chinese for Beginners — pinyin, the four tones and 300 essential characters for "
        "daily conversation.",
    ),
    ("course", "中文写作提升班 — 学习记叙文和议论文的写法，提高华文考试的作文分数。"),
    (
        "course",
        "Malaysian History: From the Melaka Sultanate to Merdeka — key events and themes for SPM "
        "Sejarah.",
    ),
    (
        "course",
        "Sejarah Dunia Moden — Revolusi Perindustrian, kedua-dua Perang Dunia dan kesannya kepada "
        "Asia Tenggara.",
    ),
    (
        "course",
        "Principles of Microeconomics — supply and demand, elasticity and market structures with "
        "Malaysian case studies.",
    ),
    (
        "course",
        "Macroeconomics in the News — inflation, interest rates and exchange rates explained "
        "through current headlines.",
    ),
    (
        "course",
        "Financial Accounting Basics — double-entry bookkeeping, the trial balance and preparing "
        "simple financial statements.",
    ),
    (
        "course",
        "Prinsip Perakaunan SPM — jurnal, lejar, imbangan duga dan penyata kewangan dengan "
        "latihan berpandu.",
    ),
    (
        "course",
        "Graphic Design Essentials — typography, colour theory and layout using free tools like "
        "Canva and Inkscape.",
    ),
    ("course", "平面设计入门 — 学习色彩搭配、版式设计和海报制作，打造属于自己的作品集。"),
    (
        "course",
        "Music Theory Grades 1 to 5 — reading notation, scales, intervals and chords, with "
        "ear-training exercises.",
    ),
    (
        "course",
        "Songwriting and Harmony — chord progressions, melody writing and arranging your first "
        "original song.",
    ),
    (
        "course",
        "Smartphone Photography — composition, lighting and editing for striking photos with the "
        "phone you already own.",
    ),
    (
        "course",
        "Fotografi Digital Asas — memahami bukaan, kelajuan pengatup dan ISO untuk gambar yang "
        "lebih tajam.",
    ),
    (
        "course",
        "Public Speaking with Confidence — manage stage fright, structure a talk and engage any "
        "audience.",
    ),
    (
        "course",
        "Debate and Persuasion — build arguments, rebut opponents and speak clearly under time "
        "pressure.",
    ),
    (
        "course",
        "Learning How to Learn — spaced repetition, active recall and focus techniques backed by "
        "cognitive science.",
    ),
    ("course", "高效学习法 — 番茄工作法、思维导图和复习计划，帮助你学得更快、记得更牢。"),
    (
        "course",
        "IELTS Academic Preparation — band 7 strategies for listening, reading, writing and "
        "speaking, with full mock tests.",
    ),
    (
        "course",
        "Persediaan STPM Penggal 1 — ulang kaji topik utama, teknik menjawab dan kertas percubaan "
        "beserta skema jawapan.",
    ),
    (
        "course",
        "Career Planning for Graduates — writing a CV, acing interviews and landing your first "
        "job in Malaysia.",
    ),
    (
        "course",
        "Breaking into Tech — portfolios, internships and the skills employers look for in junior "
        "developers and data analysts.",
    ),
    (
        "course",
        "Mental Wellbeing for Students — recognising stress, building healthy routines and "
        "knowing when to seek help.",
    ),
    (
        "course",
        "Mengurus Tekanan dan Kebimbangan — teknik pernafasan, tidur yang cukup dan sokongan "
        "rakan untuk pelajar universiti.",
    ),
    (
        "course",
        "Start Your Own Business — validating ideas, writing a lean business plan and registering "
        "a company with SSM.",
    ),
    (
        "course",
        "Digital Marketing for Small Businesses — social media, content and simple ads on a tight "
        "budget.",
    ),
    (
        "lesson",
        "Lesson 1: Inside the Cell — a tour of the nucleus, mitochondria and ribosomes, and what "
        "each one does.",
    ),
    (
        "lesson",
        "Photosynthesis step by step: how chlorophyll captures sunlight to turn carbon dioxide "
        "and water into glucose and oxygen.",
    ),
    (
        "lesson",
        "Pelajaran 4: Fotosintesis — bagaimana tumbuhan menghasilkan makanan sendiri menggunakan "
        "cahaya matahari, air dan karbon dioksida.",
    ),
    (
        "lesson",
        "Mitosis versus meiosis, compared side by side with diagrams and a short quiz at the end.",
    ),
    (
        "lesson",
        "Transpiration lab: measure how fast a leafy stem loses water under a fan, in sunlight "
        "and in shade.",
    ),
    ("lesson", "第三课：人体消化系统 — 食物如何在口腔、胃和小肠中被分解和吸收。"),
    (
        "lesson",
        "Naming organic compounds with IUPAC rules, from simple alkanes to alcohols and "
        "carboxylic acids.",
    ),
    (
        "lesson",
        "Lesson 6: Esterification — reacting an alcohol with a carboxylic acid to make "
        "sweet-smelling esters, plus a safety walkthrough.",
    ),
    (
        "lesson",
        "Mengira pH larutan asid kuat dan asid lemah, dengan contoh soalan Kimia kertas 2 SPM.",
    ),
    (
        "lesson",
        "The mole concept without panic: converting between mass, moles and the number of "
        "particles.",
    ),
    (
        "lesson",
        "Balancing chemical equations — a simple method that works every time, even for "
        "combustion reactions.",
    ),
    (
        "lesson",
        "Newton's three laws of motion demonstrated with trolleys, balloons and a skateboard.",
    ),
    (
        "lesson",
        "Lesson 2: Work, energy and power — calculating how much energy a lift uses to carry "
        "passengers up ten floors.",
    ),
    ("lesson", "第五课：欧姆定律 — 电压、电流和电阻之间的关系，以及串联电路与并联电路的区别。"),
    (
        "lesson",
        "Waves and sound: frequency, wavelength and why your voice sounds different in an empty "
        "room.",
    ),
    (
        "lesson",
        "Daya dan Gerakan: memahami momentum dan impuls melalui contoh perlanggaran kereta di "
        "jalan raya.",
    ),
    (
        "lesson",
        "Differentiation from first principles, then the shortcut rules for powers, products and "
        "quotients.",
    ),
    (
        "lesson",
        "Lesson 8: Integration as the area under a curve, with worked SPM Additional Mathematics "
        "questions.",
    ),
    (
        "lesson",
        "Menyelesaikan persamaan kuadratik dengan tiga kaedah: pemfaktoran, penyempurnaan kuasa "
        "dua dan rumus.",
    ),
    (
        "lesson",
        "Teknik menjawab soalan Matematik kertas 1 dengan pantas dan tepat semasa peperiksaan SPM.",
    ),
    (
        "lesson",
        "Arithmetic and geometric progressions: finding the nth term and the sum of a series.",
    ),
    (
        "lesson",
        "Trigonometry refresher — sine, cosine and tangent, the unit circle and solving triangles.",
    ),
    ("lesson", "Mean, median and mode: which average to report when your data has outliers."),
    (
        "lesson",
        "Lesson 5: Hypothesis testing with the t-test, explained using exam scores from two "
        "schools.",
    ),
    (
        "lesson",
        "Reading a scatter plot and fitting a line of best fit with simple linear regression.",
    ),
    (
        "lesson",
        "Conditional probability with tree diagrams — drawing marbles, medical tests and false "
        "positives.",
    ),
    ("lesson", "第二课：正态分布与标准差 — 为什么大多数考试成绩会呈现钟形曲线。"),
    (
        "lesson",
        "Lesson 1: Installing Python and writing your very first program, one that greets you by "
        "name.",
    ),
    (
        "lesson",
        "For loops and while loops in Python, with exercises that build a simple number-guessing "
        "game.",
    ),
    (
        "lesson",
        "Functions and parameters: writing reusable code instead of copying and pasting the same "
        "lines.",
    ),
    (
        "lesson",
        "JavaScript basics — let, const, arrays and arrow functions, tried out right in the "
        "browser console.",
    ),
    (
        "lesson",
        "Pengenalan kepada pemboleh ubah dan jenis data dalam Python untuk pelajar yang belum "
        "pernah mengekod.",
    ),
    (
        "lesson",
        "Debugging like a pro: reading error messages, adding print statements and stepping "
        "through code.",
    ),
    (
        "lesson",
        "Lesson 3: Flexbox and CSS Grid — laying out a responsive page that looks good on phones "
        "and laptops.",
    ),
    (
        "lesson",
        "Building a REST API with Node.js and Express, then connecting it to a React front end.",
    ),
    (
        "lesson",
        "Semantic HTML and accessibility: headings, alt text and forms that screen readers "
        "understand.",
    ),
    ("lesson", "第七课：把网站部署到云端 — 配置域名、HTTPS 证书和自动化部署流程。"),
    ("lesson", "Handling form input and validation in React without losing your users' data."),
    (
        "lesson",
        "Loading a CSV into pandas and fixing missing values, duplicates and inconsistent date "
        "formats.",
    ),
    (
        "lesson",
        "Lesson 4: Visualising trends with matplotlib — line charts, bar charts and when not to "
        "use a pie chart.",
    ),
    ("lesson", "Exploratory data analysis on rainfall records from Malaysian weather stations."),
    (
        "lesson",
        "Membersihkan data dan membina carta ringkas menggunakan Excel sebelum beralih ke Python.",
    ),
    (
        "lesson",
        "Storytelling with data: turning an analysis into a one-page summary that managers "
        "actually read.",
    ),
    (
        "lesson",
        "Lesson 1: What is machine learning? Supervised, unsupervised and reinforcement learning "
        "with everyday examples.",
    ),
    (
        "lesson",
        "Train-test splits, overfitting and cross-validation, demonstrated with a small decision "
        "tree.",
    ),
    (
        "lesson",
        "Linear and logistic regression in scikit-learn, from fitting a model to interpreting its "
        "coefficients.",
    ),
    (
        "lesson",
        "Neural networks from scratch: neurons, activation functions and backpropagation in about "
        "a hundred lines of NumPy.",
    ),
    ("lesson", "第六课：卷积神经网络 — 让计算机识别手写数字的原理与实践。"),
    (
        "lesson",
        "Capstone project: predicting Klang Valley house prices and presenting your model's "
        "errors honestly.",
    ),
    (
        "lesson",
        "Lesson 2: Filtering rows with WHERE, sorting with ORDER BY and limiting the results.",
    ),
    (
        "lesson",
        "INNER, LEFT and FULL joins explained with students, courses and enrolments tables.",
    ),
    ("lesson", "Aggregating with GROUP BY and HAVING to find the most popular courses each month."),
    ("lesson", "Normalising a messy spreadsheet into third normal form, one step at a time."),
    (
        "lesson",
        "Indeks pangkalan data: mengapa pertanyaan SQL anda perlahan dan cara untuk "
        "mempercepatkannya.",
    ),
    (
        "lesson",
        "Writing a strong thesis statement and topic sentences that keep your essay focused.",
    ),
    (
        "lesson",
        "Lesson 3: Paraphrasing and quoting — avoiding plagiarism while still using your sources "
        "well.",
    ),
    (
        "lesson",
        "APA versus Harvard referencing, with examples for books, journal articles and websites.",
    ),
    (
        "lesson",
        "Show, don't tell: using sensory detail and dialogue to bring a short story to life.",
    ),
    (
        "lesson",
        "Common grammar mistakes Malaysian students make, from subject-verb agreement to 'discuss "
        "about'.",
    ),
    (
        "lesson",
        "Pelajaran 2: Penanda wacana dalam karangan — cara menggunakan 'selain itu', 'tambahan "
        "pula' dan 'kesimpulannya'.",
    ),
    (
        "lesson",
        "Peribahasa dan simpulan bahasa yang sering keluar dalam peperiksaan, beserta maksud dan "
        "contoh ayat.",
    ),
    (
        "lesson",
        "Malay pronunciation and basic sentence structure: 'saya', 'awak', 'mahu' and forming "
        "simple questions.",
    ),
    (
        "lesson",
        "Menulis surat kiriman rasmi mengikut format yang betul untuk Bahasa Melayu kertas 1.",
    ),
    (
        "lesson",
        "Numbers, prices and bargaining at the pasar malam — practical Malay for everyday "
        "shopping.",
    ),
    (
        "lesson",
        "Lesson 1: The four tones of Mandarin and how a single syllable like 'ma' changes its "
        "meaning.",
    ),
    ("lesson", "Reading and writing pinyin, with listening drills to tell apart zh, ch and sh."),
    (
        "lesson",
        "Stroke order basics: writing your first 50 Chinese characters correctly and remembering "
        "them.",
    ),
    ("lesson", "第四课：日常会话 — 如何用中文自我介绍、问路和在餐厅点菜。"),
    ("lesson", "汉字部首入门：认识常见的部首，帮助你猜出生字的意思。"),
    (
        "lesson",
        "Measure words in Mandarin: why it is 一本书 but 一只猫, with a cheat sheet of the twenty "
        "most common ones.",
    ),
    (
        "lesson",
        "The rise of the Melaka Sultanate as a trading port and its role in spreading Islam "
        "across the region.",
    ),
    (
        "lesson",
        "Lesson 5: The road to Merdeka — negotiations, the Federation of Malaya and independence "
        "in 1957.",
    ),
    (
        "lesson",
        "Pembentukan Malaysia pada tahun 1963: latar belakang, cabaran dan penyertaan Sabah serta "
        "Sarawak.",
    ),
    (
        "lesson",
        "Causes of the First World War explained through alliances, militarism, empire and "
        "nationalism.",
    ),
    (
        "lesson",
        "How the Industrial Revolution changed work, cities and family life in nineteenth-century "
        "Britain.",
    ),
    (
        "lesson",
        "Lesson 1: Demand and supply curves — why durian prices fall at the peak of the season.",
    ),
    ("lesson", "Price elasticity of demand, with examples from petrol, rice and bubble tea."),
    ("lesson", "第三课：通货膨胀 — 为什么物价会上涨，央行又如何通过利率来控制。"),
    (
        "lesson",
        "Market structures compared: perfect competition, monopoly and the oligopoly of mobile "
        "network providers.",
    ),
    (
        "lesson",
        "Opportunity cost and scarcity: the first two ideas every economics student must "
        "understand.",
    ),
    (
        "lesson",
        "Double-entry bookkeeping: every debit has a credit, illustrated with a small bakery's "
        "first month of trading.",
    ),
    ("lesson", "Lesson 4: Preparing a trial balance and spotting the errors it will not reveal."),
    (
        "lesson",
        "Menyediakan penyata pendapatan dan kunci kira-kira untuk perniagaan milikan tunggal.",
    ),
    (
        "lesson",
        "Depreciation methods — straight-line versus reducing balance, with a delivery van as the "
        "example.",
    ),
    ("lesson", "Cash flow statements: why a profitable business can still run out of money."),
    (
        "lesson",
        "Typography 101: pairing fonts, choosing sizes and creating a clear visual hierarchy.",
    ),
    (
        "lesson",
        "Colour theory for designers — complementary and analogous palettes, and how colour sets "
        "the mood.",
    ),
    (
        "lesson",
        "Lesson 6: Designing an event poster in Canva, from a blank canvas to a print-ready file.",
    ),
    (
        "lesson",
        "Asas reka bentuk logo: kesederhanaan, ruang negatif dan memilih warna jenama yang sesuai.",
    ),
    ("lesson", "Vector illustration in Inkscape: paths, shapes and exporting icons for the web."),
    ("lesson", "Reading treble and bass clef notes quickly with mnemonics and flashcard drills."),
    ("lesson", "Major and minor scales, key signatures and the circle of fifths made simple."),
    ("lesson", "Lesson 3: Building triads and seventh chords on the piano keyboard."),
    ("lesson", "第二课：节奏与拍号 — 学会数四分音符、八分音符和附点节奏。"),
    ("lesson", "Writing a four-chord pop progression and a melody that fits over it."),
    (
        "lesson",
        "The rule of thirds, leading lines and framing: composition tricks for more interesting "
        "photos.",
    ),
    (
        "lesson",
        "Lesson 2: Shooting in natural light — golden hour, window light and avoiding harsh "
        "midday shadows.",
    ),
    ("lesson", "Understanding exposure: how aperture, shutter speed and ISO work together."),
    ("lesson", "手机修图技巧：调整曝光、色温和裁剪，让照片更有质感。"),
    ("lesson", "Street and food photography around Penang: telling a story in a single frame."),
    (
        "lesson",
        "Lesson 1: Why we get nervous on stage, and breathing exercises that calm your voice "
        "before a talk.",
    ),
    (
        "lesson",
        "Structuring a five-minute speech: a hook, three main points and a memorable close.",
    ),
    (
        "lesson",
        "Body language, eye contact and pausing for effect, practised with recorded video "
        "feedback.",
    ),
    (
        "lesson",
        "Teknik berucap di hadapan khalayak: mengawal rasa gemuruh dan menggunakan intonasi yang "
        "berkesan.",
    ),
    ("lesson", "Handling questions from the audience, including the ones you cannot answer."),
    (
        "lesson",
        "Active recall and spaced repetition: building flashcard decks that actually stick.",
    ),
    (
        "lesson",
        "Lesson 2: The Pomodoro technique — 25 minutes of focus, a five-minute break, then repeat.",
    ),
    (
        "lesson",
        "Making a weekly study timetable that balances classes, revision, rest and family time.",
    ),
    ("lesson", "第三课：康奈尔笔记法 — 怎样做笔记才方便日后复习。"),
    (
        "lesson",
        "Staying focused at home: setting up a distraction-free study corner and blocking social "
        "media.",
    ),
    (
        "lesson",
        "IELTS Writing Task 2: planning an opinion essay in five minutes and hitting every "
        "marking criterion.",
    ),
    (
        "lesson",
        "Lesson 5: IELTS Speaking Part 2 — talking for two minutes on a cue card without running "
        "out of ideas.",
    ),
    (
        "lesson",
        "Strategi menjawab soalan Sejarah SPM: kata kunci, fakta dan huraian untuk markah penuh.",
    ),
    (
        "lesson",
        "STPM Mathematics T past-year questions on matrices and complex numbers, fully worked.",
    ),
    (
        "lesson",
        "Time management on exam day: reading the paper, allocating minutes per mark and checking "
        "answers.",
    ),
    ("lesson", "SPM 华文试卷解析：理解题和作文题的答题技巧。"),
    ("lesson", "Lesson 1: Writing a one-page CV that highlights projects, not just grades."),
    ("lesson", "Preparing for behavioural interviews with the STAR method and practice questions."),
    ("lesson", "Building a LinkedIn profile and networking without feeling awkward."),
    (
        "lesson",
        "From intern to data scientist: mapping the skills and portfolio projects that hiring "
        "managers expect.",
    ),
    (
        "lesson",
        "Lesson 1: Recognising the signs of burnout and exam anxiety in yourself and your friends.",
    ),
    (
        "lesson",
        "Sleep, exercise and nutrition: small daily habits that protect your mood during exam "
        "season.",
    ),
    (
        "lesson",
        "Bercakap tentang kesihatan mental: cara meminta bantuan daripada kaunselor atau orang "
        "yang dipercayai.",
    ),
    ("lesson", "A ten-minute mindfulness practice to reset your mind between study sessions."),
    (
        "lesson",
        "Lesson 2: Validating a business idea by interviewing ten potential customers before "
        "building anything.",
    ),
    (
        "lesson",
        "Pricing your product: cost-plus, competitor-based and value-based pricing for small "
        "sellers.",
    ),
    ("lesson", "Mendaftar perniagaan dengan SSM dan memahami cukai asas untuk usahawan muda."),
    (
        "lesson",
        "Selling on Shopee and Instagram: product photos, descriptions and handling customer "
        "messages.",
    ),
    (
        "post",
        "Can someone explain why plants need light for photosynthesis but still respire at night? "
        "My textbook makes it sound like they only do one or the other.",
    ),
    (
        "post",
        "Ada sesiapa ada nota ringkas Biologi tentang fotosintesis? Saya masih keliru antara "
        "tindak balas cahaya dan tindak balas gelap.",
    ),
    (
        "post",
        "Tip from a tutor: draw the cell diagrams yourself from memory instead of colouring in "
        "the ones from the book. It sticks far better.",
    ),
    (
        "post",
        "Just finished the transpiration experiment — our leafy stem lost almost twice as much "
        "water under the fan. Science is fun when it works!",
    ),
    (
        "post",
        "Why does my ester smell like nail polish instead of bananas? Did I use the wrong alcohol "
        "in the practical?",
    ),
    ("post", "有人可以分享有机化学的记忆方法吗？官能团太多了，我总是搞混。"),
    (
        "post",
        "Moles finally clicked for me when my tutor compared them to a 'dozen' — just a counting "
        "unit for very tiny particles.",
    ),
    (
        "post",
        "Soalan: kenapa larutan ammonia bersifat alkali walaupun tiada ion hidroksida dalam "
        "formulanya?",
    ),
    (
        "post",
        "Struggling with projectile motion questions. How do you know when to split the velocity "
        "into horizontal and vertical parts?",
    ),
    (
        "post",
        "Physics tip: always write the units next to every number. Half my mistakes disappeared "
        "once I started doing this.",
    ),
    ("post", "电路题里串联和并联总是分不清，大家有什么简单的判断方法吗？"),
    (
        "post",
        "Built a tiny electric motor from a battery, a magnet and copper wire for our class "
        "project. Happy to share the steps.",
    ),
    (
        "post",
        "Macam mana nak belajar matematik dengan berkesan untuk peperiksaan SPM? Saya selalu lupa "
        "rumus bila masuk dewan.",
    ),
    (
        "post",
        "Integration by substitution keeps tripping me up. Any tutors willing to walk through a "
        "couple of examples in a live session?",
    ),
    (
        "post",
        "Here is my one-page formula sheet for Add Maths, covering differentiation, integration "
        "and progressions. Feel free to print it.",
    ),
    (
        "post",
        "Tip daripada cikgu: buat soalan tahun lepas dengan had masa sebenar, kemudian semak "
        "kesilapan satu per satu.",
    ),
    (
        "post",
        "When should I use the median instead of the mean? My household income data has a few "
        "very large values.",
    ),
    (
        "post",
        "Does a p-value of 0.05 mean there is a 95% chance my hypothesis is true? Our lecturer "
        "said no, but I still don't see why.",
    ),
    (
        "post",
        "Statistics tutor here: sketch the distribution before calculating anything and you will "
        "catch most errors early.",
    ),
    (
        "post",
        "Boleh sesiapa terangkan perbezaan antara sisihan piawai dan varians dengan bahasa yang "
        "mudah?",
    ),
    (
        "post",
        "I'm 35 and want to learn programming from zero. Is Python a good first language, or "
        "should I start with JavaScript?",
    ),
    (
        "post",
        "Finally wrote my first Python script — it renames all my holiday photos by date. Small "
        "win, but I'm proud of it!",
    ),
    ("post", "零基础自学编程应该从哪里开始？看了很多视频，还是不知道怎么动手写代码。"),
    (
        "post",
        "Beginner tip: type the code examples out by hand instead of copy-pasting. You pick up "
        "the syntax much faster.",
    ),
    (
        "post",
        "My CSS grid looks perfect on desktop but collapses into one long column on my phone. "
        "What am I missing?",
    ),
    (
        "post",
        "Tutor tip: build three small projects — a portfolio, a to-do app and a weather page — "
        "before jumping into frameworks.",
    ),
    (
        "post",
        "Lebih baik belajar React atau Vue dahulu? Saya sudah faham asas HTML, CSS dan JavaScript "
        "untuk pembangunan web.",
    ),
    (
        "post",
        "Deployed my first website today on a free hosting tier. It's only a portfolio, but it's "
        "live and I built it myself.",
    ),
    (
        "post",
        "Is it worth learning R, or is Python with pandas enough for a data analyst role in "
        "Malaysia?",
    ),
    (
        "post",
        "Sharing my notebook that analyses bus ridership before and after the fare change. "
        "Feedback welcome!",
    ),
    ("post", "数据清洗真的占了分析工作的百分之八十吗？感觉每次都在处理缺失值。"),
    (
        "post",
        "Hot take from a data tutor: learn to explain a bar chart clearly before you learn deep "
        "learning.",
    ),
    (
        "post",
        "How do I move from a software testing job into a machine learning career? Is a master's "
        "degree necessary, or are projects enough?",
    ),
    (
        "post",
        "My model gets 99% accuracy on the training data but only 60% on the test set. Classic "
        "overfitting? What should I try first?",
    ),
    (
        "post",
        "Saya pelajar tahun akhir sains komputer. Projek pembelajaran mesin apa yang sesuai untuk "
        "portfolio supaya mudah dapat kerja?",
    ),
    (
        "post",
        "Study group forming for Machine Learning A to Z. We meet online every Thursday night to "
        "go through the assignments together.",
    ),
    (
        "post",
        "What is the difference between a LEFT JOIN and an INNER JOIN? I keep getting more rows "
        "than I expect.",
    ),
    (
        "post",
        "Tip: build your SQL query in small steps and check the row count after each JOIN. It "
        "saves hours of debugging.",
    ),
    (
        "post",
        "Pensyarah minta kami reka pangkalan data untuk sistem perpustakaan. Berapa banyak jadual "
        "yang sepatutnya ada?",
    ),
    ("post", "Should a beginner learn PostgreSQL or MySQL first? Our university labs use both."),
    (
        "post",
        "Could someone proofread my essay introduction? I'm not sure my thesis statement is clear "
        "enough.",
    ),
    (
        "post",
        "Writing tutor here: read your essay aloud. If you run out of breath in the middle of a "
        "sentence, it's too long.",
    ),
    ("post", "英文写作总是用很简单的词，怎样才能让文章读起来更有学术感？"),
    (
        "post",
        "Is it okay to use 'I' in an argumentative essay, or does it make the writing sound less "
        "academic?",
    ),
    (
        "post",
        "I moved to Kuala Lumpur for work and want to speak basic Malay with my colleagues. Which "
        "course here suits a total beginner?",
    ),
    (
        "post",
        "Bagaimana nak menambah kosa kata untuk karangan Bahasa Melayu? Saya rasa ayat saya "
        "terlalu mudah dan berulang.",
    ),
    (
        "post",
        "Kongsi sedikit: saya hafal lima peribahasa seminggu dan cuba guna dalam perbualan "
        "harian. Memang membantu!",
    ),
    (
        "post",
        "Quick question: when is 'di' written as a separate word and when is it attached to the "
        "verb?",
    ),
    (
        "post",
        "I want to learn Chinese so I can talk to my grandparents. Where should a complete "
        "beginner start, tones or characters?",
    ),
    ("post", "学习中文最难的是声调吗？我常常把第二声和第三声读错。"),
    ("post", "分享一个学汉字的小方法：每天写十个字，再用它们造一个句子，坚持一个月进步很明显。"),
    (
        "post",
        "Mandarin tutor tip: watch short dramas with Chinese subtitles. You pick up natural "
        "phrases and train your reading at the same time.",
    ),
    (
        "post",
        "Why was Melaka such an important port in the fifteenth century? I need three reasons for "
        "my history assignment.",
    ),
    (
        "post",
        "Ada tak nota peta minda untuk Sejarah Tingkatan 5 bab kemerdekaan? Saya lebih faham bila "
        "belajar guna gambar rajah.",
    ),
    (
        "post",
        "History doesn't have to be memorising dates. Link each event to a cause and a "
        "consequence and the story falls into place.",
    ),
    (
        "post",
        "Can anyone recommend documentaries about the Second World War in Southeast Asia? "
        "Something suitable for a class discussion.",
    ),
    (
        "post",
        "Why do economists say rent control can cause housing shortages? It sounds like it should "
        "help tenants.",
    ),
    ("post", "经济学里的机会成本到底是什么意思？能不能举一个学生生活中的例子？"),
    (
        "post",
        "My takeaway from the macroeconomics course: the ringgit's exchange rate affects "
        "everything from petrol prices to overseas tuition fees.",
    ),
    (
        "post",
        "Does anyone have a simple diagram showing how an interest rate rise affects spending and "
        "inflation?",
    ),
    ("post", "Help! My trial balance is off by exactly RM90. Could that be a transposition error?"),
    (
        "post",
        "Cikgu perakaunan saya kata untung tidak sama dengan tunai. Boleh sesiapa beri contoh "
        "yang mudah?",
    ),
    (
        "post",
        "Accounting tip: learn the accounting equation by heart — assets equal liabilities plus "
        "equity — and check every transaction against it.",
    ),
    (
        "post",
        "I run a small kuih business from home. Which accounting course here would help me keep "
        "proper records?",
    ),
    (
        "post",
        "Rate my poster for our school's charity run! I tried complementary colours but I'm not "
        "sure about the font.",
    ),
    (
        "post",
        "Design tip: limit yourself to two fonts and three colours on a poster. Restraint looks "
        "professional.",
    ),
    ("post", "做平面设计一定要学 Photoshop 吗？还是用 Canva 就够了？"),
    (
        "post",
        "Any free alternatives to expensive design software that run well on an old laptop? I'm a "
        "student on a tight budget.",
    ),
    (
        "post",
        "How do I memorise the circle of fifths? I keep mixing up the order of sharps and flats.",
    ),
    (
        "post",
        "Saya baru belajar gitar. Perlukah saya belajar membaca not muzik atau cukup dengan kord "
        "sahaja?",
    ),
    (
        "post",
        "Practice tip: sing the intervals before you play them. It trains your ear faster than "
        "any app.",
    ),
    (
        "post",
        "Passed my Grade 5 theory exam today after failing it last year. Consistent practice "
        "really works, so don't give up!",
    ),
    (
        "post",
        "Why do my night photos always come out blurry? I'm using a phone and don't own a tripod.",
    ),
    (
        "post",
        "Photography tutor here: before buying a new lens, spend a month shooting at one focal "
        "length only. It forces you to move and think.",
    ),
    (
        "post",
        "Kongsi gambar matahari terbenam di Pantai Cenang yang saya ambil minggu lepas. Guna "
        "telefon sahaja, tanpa suntingan!",
    ),
    (
        "post",
        "What editing app do you recommend for food photos? My nasi lemak pictures look dull and "
        "yellow.",
    ),
    (
        "post",
        "I have to present my final-year project to twenty lecturers next week and my hands shake "
        "just thinking about it. Any advice?",
    ),
    (
        "post",
        "Speaking coach tip: rehearse your opening line until it's automatic. The first thirty "
        "seconds are when nerves hit hardest.",
    ),
    ("post", "上台演讲时脑袋一片空白怎么办？有没有克服紧张的好方法？"),
    (
        "post",
        "Joined the campus speaking club after finishing the public speaking course and gave my "
        "first icebreaker speech today!",
    ),
    (
        "post",
        "What keeps me going with online classes: a fixed daily schedule, a study buddy on video "
        "call and ticking off each module on a wall chart.",
    ),
    (
        "post",
        "Anyone else find it hard to stay motivated when every class is online? I open the "
        "lecture and end up scrolling my phone instead.",
    ),
    (
        "post",
        "Saya selalu hilang semangat belajar di rumah. Ada tip untuk kekal bermotivasi semasa "
        "kelas dalam talian?",
    ),
    ("post", "在家上网课很容易分心，大家是怎么保持学习动力的？"),
    (
        "post",
        "Spaced repetition changed my revision. I review flashcards after one day, three days and "
        "a week, and I forget far less.",
    ),
    (
        "post",
        "Got band 7.5 in IELTS on my second attempt! The biggest change was practising Writing "
        "Task 2 under a strict 40-minute timer.",
    ),
    (
        "post",
        "STPM tinggal tiga bulan lagi. Bagaimana nak bahagikan masa ulang kaji antara Pengajian "
        "Am, Ekonomi dan Matematik?",
    ),
    (
        "post",
        "Is it better to do many past-year papers quickly, or fewer papers slowly with careful "
        "marking? SPM is in November.",
    ),
    ("post", "准备雅思口语考试有什么好方法？我一紧张就说不出话来。"),
    (
        "post",
        "Fresh graduate with a chemistry degree, but I want to work in data analytics. Is the "
        "switch realistic without another degree?",
    ),
    (
        "post",
        "Recruiter's tip: tailor your CV for every application. A generic CV is easy to spot and "
        "easy to reject.",
    ),
    (
        "post",
        "Nasihat kerjaya: jangan takut memohon latihan industri di syarikat kecil, kerana "
        "pengalaman di sana selalunya lebih luas.",
    ),
    (
        "post",
        "What salary should I expect as a junior machine learning engineer in Kuala Lumpur, and "
        "which skills matter most in interviews?",
    ),
    (
        "post",
        "Feeling completely burnt out in my second year. How do you all take breaks without "
        "feeling guilty about not studying?",
    ),
    (
        "post",
        "Gentle reminder from a counsellor: asking for help is a sign of strength. Your campus "
        "counselling service is free and confidential.",
    ),
    (
        "post",
        "Saya rasa sangat tertekan menjelang peperiksaan akhir dan susah tidur. Ada sesiapa "
        "pernah alami perkara yang sama?",
    ),
    (
        "post",
        "Walking for twenty minutes after dinner has done more for my exam anxiety than any app "
        "I've tried.",
    ),
    ("post", "每次考试前都焦虑得睡不着，心跳得很快。有谁愿意分享让自己放松下来的方法？"),
    (
        "post",
        "Started selling handmade batik tote bags online during the semester break. How do I "
        "price them so I actually make a profit?",
    ),
    (
        "post",
        "Founder's tip: talk to customers before you write a business plan. Half of my "
        "assumptions turned out to be wrong.",
    ),
    ("post", "大学生创业需要注册公司吗？在马来西亚向 SSM 注册麻烦吗？"),
    (
        "post",
        "Saya ingin memulakan perniagaan makanan kecil-kecilan dari rumah. Bagaimana nak urus "
        "kewangan supaya tidak rugi?",
    ),
    (
        "profile",
        "Nurul Aina binti Hassan — biology tutor with a master's in plant science who turns "
        "photosynthesis and genetics into simple stories.",
    ),
    (
        "profile",
        "Kavitha Ramasamy, Form 5 student in Ipoh dreaming of medicine. Into biology, "
        "volunteering at an animal shelter and badminton.",
    ),
    ("profile", "林佩珊，化学老师，有十年教学经验，擅长用生活中的例子讲解有机化学。"),
    (
        "profile",
        "Aiman Zulkifli — second-year chemical engineering student who tutors SPM chemistry on "
        "weekends and enjoys hiking.",
    ),
    (
        "profile",
        "Dr. Rajesh Menon, physics lecturer at a Penang college, interested in renewable energy "
        "and making physics less scary.",
    ),
    (
        "profile",
        "Siti Hajar, pelajar Tingkatan 6 di Kota Bharu yang meminati fizik dan astronomi serta "
        "bercita-cita menjadi jurutera aeroangkasa.",
    ),
    (
        "profile",
        "Cikgu Farid, Add Maths teacher for fifteen years, believes every student can score an A "
        "with the right practice routine.",
    ),
    (
        "profile",
        "Tan Wei Ling, calon SPM dari Seremban yang sedang berusaha memperbaiki markah Matematik "
        "Tambahan. Suka melukis dan bermain piano.",
    ),
    (
        "profile",
        "Jessica Lau — former market researcher who now tutors statistics to psychology and "
        "business students puzzled by SPSS output.",
    ),
    (
        "profile",
        "Amirul Hakim, actuarial science undergraduate who enjoys probability puzzles, chess and "
        "Sunday futsal.",
    ),
    (
        "profile",
        "Daniel Ong, self-taught Python developer turned tutor, patient with complete beginners "
        "and happiest when a first program finally runs.",
    ),
    (
        "profile",
        "Priya Subramaniam — accounting graduate learning to code in the evenings, currently "
        "halfway through the JavaScript basics.",
    ),
    (
        "profile",
        "Hafiz Rahman, front-end developer at a Cyberjaya startup who teaches HTML, CSS and React "
        "and organises monthly coding meetups.",
    ),
    ("profile", "陈俊杰，计算机科学系大二学生，喜欢网页设计和开源项目，正在学习 React。"),
    (
        "profile",
        "Chong Mei Ling — data analyst in banking who teaches pandas and dashboards, and bakes "
        "sourdough on weekends.",
    ),
    (
        "profile",
        "Arjun Pillai, statistics graduate building a portfolio of data science projects on "
        "public transport and air quality.",
    ),
    (
        "profile",
        "Dr. Ong Kah Wai, machine learning researcher working on Malay-language NLP who mentors "
        "students aiming for careers in AI.",
    ),
    (
        "profile",
        "Nur Izzati, graduan kejuruteraan yang sedang beralih ke bidang pembelajaran mesin dan "
        "berkongsi perjalanan kerjayanya di forum Studify.",
    ),
    (
        "profile",
        "Benjamin Teoh, database administrator with a soft spot for well-indexed tables, teaches "
        "SQL to analysts and product managers.",
    ),
    (
        "profile",
        "Farah Nadia, information systems student who loves SQL puzzles and is preparing for her "
        "first data engineering internship.",
    ),
    (
        "profile",
        "Sarah Abdullah — English lecturer and short-story writer who runs the creative writing "
        "workshop and loves a good plot twist.",
    ),
    (
        "profile",
        "Vinod Krishnan, engineering student working on essay structure and academic vocabulary "
        "before his postgraduate applications.",
    ),
    (
        "profile",
        "Cikgu Rosnah, guru Bahasa Melayu dengan pengalaman dua puluh tahun yang gemar membimbing "
        "pelajar menulis karangan.",
    ),
    (
        "profile",
        "Kenji Watanabe, exchange student at a Johor university learning conversational Malay so "
        "he can chat with his housemates.",
    ),
    ("profile", "王老师，华文教师，专门教零基础学员学习汉语拼音和日常中文会话。"),
    (
        "profile",
        "Aisyah Kamal, medical student learning Mandarin for fun, currently at HSK 3 and aiming "
        "for HSK 4 next year.",
    ),
    (
        "profile",
        "Encik Zainal, retired history teacher who shares stories about the Melaka Sultanate and "
        "the road to Merdeka.",
    ),
    (
        "profile",
        "Muhammad Danial, pelajar STPM yang meminati sejarah Asia Tenggara dan suka melawat "
        "muzium pada hujung minggu.",
    ),
    (
        "profile",
        "Grace Yap, economics tutor and former bank analyst who explains inflation and interest "
        "rates using your grocery bill.",
    ),
    (
        "profile",
        "Gerald anak Nyandang, business undergraduate from Sibu fascinated by behavioural "
        "economics and why people make irrational choices.",
    ),
    ("profile", "黄美琪，注册会计师，喜欢帮助中学生理解复式记账和财务报表。"),
    (
        "profile",
        "Shalini Devi, SPM student taking Principles of Accounting who also helps keep the books "
        "for her family's sundry shop.",
    ),
    (
        "profile",
        "Jason Wong — freelance graphic designer specialising in branding for local cafes; "
        "teaches typography and colour.",
    ),
    (
        "profile",
        "Syazwani Idris, pelajar diploma reka bentuk grafik yang gemar melukis ilustrasi digital "
        "dan mereka poster untuk acara kampus.",
    ),
    (
        "profile",
        "Melissa Goh, piano teacher who has guided students through Grade 5 theory for a decade; "
        "a big fan of jazz harmony.",
    ),
    ("profile", "郑志豪，吉他爱好者和业余作曲人，正在学习和声与编曲。"),
    (
        "profile",
        "Kamarul Ariffin, wedding and landscape photographer from Kuching who teaches composition "
        "and natural-light shooting.",
    ),
    (
        "profile",
        "Jolene Gimbang, Kadazan student from Kota Kinabalu documenting street food across "
        "Malaysia with nothing but her phone camera.",
    ),
    (
        "profile",
        "Ravi Chandran, communications trainer and former debate coach who helps shy students "
        "find their voice on stage.",
    ),
    (
        "profile",
        "Amira Sofea, pelajar tahun satu yang dahulu takut bercakap di depan kelas tetapi kini "
        "aktif dalam pertandingan pidato.",
    ),
    (
        "profile",
        "Cheryl Tan, educational psychology graduate who coaches students on study habits, focus "
        "and beating procrastination.",
    ),
    (
        "profile",
        "Faizal Rosli, online degree student with a full-time job, sharing what keeps him "
        "motivated through late-night study sessions.",
    ),
    (
        "profile",
        "Linda Fernandez, IELTS trainer for eight years, helping nurses and engineers reach band "
        "7 for work and study abroad.",
    ),
    ("profile", "李晓雯，SPM 考生，正在准备数学和华文考试，目标是全科考获 A。"),
    (
        "profile",
        "Suresh Nair, HR manager who reviews hundreds of graduate CVs a year and volunteers as a "
        "career mentor on Studify.",
    ),
    (
        "profile",
        "Puan Hamidah, kaunselor kerjaya di sebuah universiti awam yang membantu pelajar "
        "merancang laluan kerjaya selepas graduasi.",
    ),
    (
        "profile",
        "Dr. Anitha Rajan, clinical psychologist supporting university students through anxiety, "
        "burnout and exam stress.",
    ),
    (
        "profile",
        "Zara Lim, peer-support volunteer and psychology student who writes about self-care "
        "during exam season.",
    ),
    (
        "profile",
        "Irfan Yusof, founder of a small online bakery who teaches young entrepreneurs about "
        "pricing and cash flow.",
    ),
    (
        "profile",
        "Harpreet Kaur, marketing graduate running an Instagram shop for handmade jewellery; "
        "loves talking branding and small business.",
    ),
)

QUERIES: tuple[str, ...] = (
    "how do plants make food",
    "belajar matematik untuk peperiksaan",
    "learn to code as a beginner",
    "学习中文",
    "tips for staying motivated while studying online",
    "machine learning career",
    "overcoming stage fright before a presentation",
    "cara mengurus kewangan perniagaan kecil",
)
